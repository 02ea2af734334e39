"""docker/compose.yml and docker/Dockerfile, read (no Docker engine runs here): the workers'
queues are exactly the project's, every command a service runs is installed by the image,
and the start order waits for a healthy database and a finished migration."""

import re
import shlex
import tomllib
from importlib.metadata import distribution
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands
from packaging.requirements import Requirement

from pipeline import chain
from pipeline.worker import all_queues

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
APP_SERVICES = [name for name, s in SERVICES.items() if "build" in s]


def _commands(service: dict) -> list[list[str]]:
    """The command lines a service runs (`sh -c "a && b"` counts as a and b); the image's
    CMD when the service names none."""
    cmd = service.get("command")
    if cmd is None:
        cmd = _dockerfile_cmd()
    argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    if argv[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in re.split(r"&&|;", argv[2])]
    return [argv]


def _dockerfile_cmd() -> list[str]:
    m = re.search(r'^CMD (\[.*\])$', DOCKERFILE, re.M)
    return yaml.safe_load(m.group(1))


def _image_distributions() -> set[str]:
    """Distributions the image installs: the project's dependencies and the extras its
    `pip install ".[extra,...]"` names."""
    m = re.search(r'pip install [^\n]*"\.\[([\w,]+)\]"', DOCKERFILE)
    extras = m.group(1).split(",") if m else []
    reqs = list(PYPROJECT["project"]["dependencies"])
    for extra in extras:
        reqs += PYPROJECT["project"]["optional-dependencies"][extra]
    return {Requirement(r).name.lower() for r in reqs}


def _worker_queues(argv: list[str]) -> list[str]:
    return argv[argv.index("-Q") + 1].split(",")


def test_workers_together_listen_on_exactly_the_projects_queues():
    workers = {name: _worker_queues(c) for name in APP_SERVICES for c in _commands(SERVICES[name])
               if c[:1] == ["celery"] and "worker" in c}
    assert set(workers) == {"worker-cpu", "worker-gpu"}
    listened = [q for qs in workers.values() for q in qs]
    assert sorted(listened) == sorted(all_queues())  # each queue exactly once
    assert set(chain.queues()) <= set(listened)
    # The GPU worker has the stages of the GPU models and a GPU to run them on.
    assert set(workers["worker-gpu"]) == {chain.get("caption").queue, chain.get("filter").queue}
    gpu = SERVICES["worker-gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert gpu["environment"]["RELABEL_MODEL_DEVICE"] == "cuda"
    assert "/whl/cu" in gpu["build"]["args"]["TORCH_INDEX"]
    assert SERVICES["worker-cpu"]["build"]["args"]["TORCH_INDEX"].endswith("/whl/cpu")


def _check_installed(argv: list[str], image: set[str]) -> None:
    program = argv[0]
    if program == "python":
        assert argv[1] == "manage.py", argv
        assert argv[2] in get_commands(), f"no manage.py command {argv[2]!r}"
        return
    # A console script of a distribution the image installs (and that we have here).
    dist = {"celery": "celery", "gunicorn": "gunicorn"}[program]
    assert dist in image
    scripts = {e.name for e in distribution(dist).entry_points if e.group == "console_scripts"}
    assert program in scripts
    if program == "celery":
        assert argv[1:3] == ["-A", "relabel_app"], argv
        sub = argv[3]
        if sub not in ("worker", "beat", "inspect", "control", "purge", "status"):
            # A subcommand from a plug-in (flower): its distribution must be in the image.
            assert sub in image, f"celery {sub} needs the {sub!r} package in the image"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_command_is_installed(name):
    image = _image_distributions()
    for argv in _commands(SERVICES[name]):
        _check_installed(argv, image)


def test_flower_comes_from_an_optional_extra_the_image_installs():
    assert "flower" not in {Requirement(r).name for r in PYPROJECT["project"]["dependencies"]}
    assert [Requirement(r).name for r in PYPROJECT["project"]["optional-dependencies"]["flower"]] \
        == ["flower"]
    assert "flower" in _image_distributions()


def test_services_wait_for_a_healthy_database_and_a_finished_migration():
    for infra in ("postgres", "redis"):
        assert SERVICES[infra]["healthcheck"]["test"], infra
    assert SERVICES["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in APP_SERVICES:
        if name == "migrate":
            continue
        assert SERVICES[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }, name


def test_the_image_installs_the_whole_tree_plainly_with_the_chosen_torch_index():
    lines = [ln.strip() for ln in DOCKERFILE.splitlines()]
    copy_all = lines.index("COPY . .")
    install = next(i for i, ln in enumerate(lines) if ln.startswith("RUN pip install"))
    assert copy_all < install
    assert not any(ln.startswith("COPY ") for ln in lines[:copy_all])  # no partial copies
    assert " -e " not in lines[install] and "--editable" not in lines[install]
    assert 'ARG TORCH_INDEX=' in DOCKERFILE and '"${TORCH_INDEX}"' in lines[install]
    # Every app package is in the installed distribution.
    packages = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    for app in ("relabel_app", "pipeline", "review", "curation", "api"):
        assert f"{app}*" in packages and (ROOT / app / "__init__.py").exists()


def test_every_task_is_sent_to_a_queue_of_the_registry_or_the_queue_enum():
    """all_queues() is built from pipeline.chain and relabel_app.queues.CeleryQueue only: a
    task declaring a queue that neither lists would have no worker in compose."""
    from relabel_app.celery import app

    app.loader.import_default_modules()
    declared = {getattr(t, "queue_name", None) for t in app.tasks.values()} - {None}
    assert declared <= set(all_queues())
    assert app.conf.task_default_queue in all_queues()
