"""The layering as import-linter contracts ([tool.importlinter] in pyproject.toml): every
import points down (relabel_app <- pipeline <- review <- search <- curation <- api), the stage logic
imports no Django and none of the apps, the stage registry does not import its driver."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([exe, "--no-cache", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_import_contracts_are_kept():
    out = _lint_imports()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 kept, 0 broken" in out.stdout


def test_a_broken_contract_fails_the_check(tmp_path):
    """The check can fail: a contract the code breaks on purpose (the stage logic uses
    numpy) makes lint-imports exit 1 and name the import."""
    config = tmp_path / "contracts.toml"
    config.write_text("""
[tool.importlinter]
root_packages = ["pipeline"]
include_external_packages = true

[[tool.importlinter.contracts]]
name = "probe"
type = "forbidden"
source_modules = ["pipeline.stages"]
forbidden_modules = ["numpy"]
""")
    out = _lint_imports("--config", str(config))
    assert out.returncode == 1
    assert "probe BROKEN" in out.stdout and "numpy" in out.stdout


@pytest.mark.parametrize("contract", ["layers", "forbidden"])
def test_the_contracts_are_in_pyproject(contract):
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"]
    assert any(c["type"] == contract for c in contracts)
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    assert layers == ["api", "curation", "search", "review", "pipeline", "relabel_app"]
