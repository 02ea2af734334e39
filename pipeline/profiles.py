"""Profiles: one adapter and model per stage plus prompts and thresholds, stored as JSON
files (pipeline/profiles/*.json, or any path). A run stores the fully resolved profile."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from . import stage_declarations

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
VAR_RE = re.compile(r"\$\{([A-Z0-9_]+)\}")


class ProfileError(ValueError):
    pass


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.json"))


def _substitute(value, variables: dict[str, str]):
    if isinstance(value, str):
        def repl(m: re.Match) -> str:
            name = m.group(1)
            if name in variables:
                return variables[name]
            if name in os.environ:
                return os.environ[name]
            raise ProfileError(f"profile needs the environment variable {name}")
        return VAR_RE.sub(repl, value)
    if isinstance(value, dict):
        return {k: _substitute(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, variables) for v in value]
    return value


def _local_revision(model: str) -> str | None:
    """A content fingerprint of a local model folder (config files and weight sizes)."""
    path = Path(model)
    if not path.is_dir():
        return None
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        if f.is_file():
            h.update(f.name.encode())
            h.update(str(f.stat().st_size).encode())
            if f.suffix == ".json":
                h.update(f.read_bytes())
    return "local-" + h.hexdigest()[:16]


def resolve_profile(name_or_path: str, *, model_dir: Path) -> dict:
    """Load a profile by name (pipeline/profiles/<name>.json) or path and resolve it fully."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.json"
    if not path.is_file():
        raise ProfileError(
            f"no profile {name_or_path!r}; known: {', '.join(profile_names())} (or a .json path)"
        )
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ProfileError(f"{path}: not valid JSON: {e}") from None
    use_llm = raw.get("match", {}).get("use_llm", False)
    backends = dict(raw.get("backends", {}))
    if not use_llm:
        backends.pop("match_llm", None)
    resolved = _substitute({**raw, "backends": backends}, {"MODEL_DIR": str(model_dir)})
    # Each stage's section filled from its config class, once: what the run stores is
    # what every stage reads back (Stage.read_config).
    for stage in stage_declarations.stages():
        if stage.config_class is not None:
            section = stage.config_section()
            resolved[section] = stage.resolve_config(resolved.get(section) or {})
    resolved.setdefault("chunk_size", 16)
    # Fingerprints of local model folders, so a result can be traced to the exact files.
    resolved["model_fingerprints"] = {
        role: rev for role, spec in resolved["backends"].items()
        if (rev := _local_revision(spec.get("model", "")))
    }
    resolved["source"] = str(path)
    return resolved
