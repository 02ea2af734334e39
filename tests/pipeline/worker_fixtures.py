"""A real Celery worker subprocess on the test database, shared by worker tests."""

import os
import signal

import pytest
from django.core.management import call_command
from django.db import connection

from pipeline.worker import start_worker
from relabel_app.models import Dataset


@pytest.fixture
def demo_dataset(tmp_path, settings):
    settings.AUDIO_ROOT = tmp_path / "audio"
    call_command("make_demo_clips")
    return Dataset.objects.get(name="demo")


@pytest.fixture
def worker(tmp_path):
    from relabel_app.celery import app

    app.control.purge()  # nothing left over from an earlier test run
    env = {
        "RELABEL_DATABASE_NAME": connection.settings_dict["NAME"],
        "DJANGO_SETTINGS_MODULE": "relabel_app.settings.test",
    }
    log = tmp_path / "worker.log"
    procs = []

    def start(*, queues: list[str] | None = None, name: str | None = None):
        """A worker on every queue, or on `queues`; a named one logs to <tmp>/<name>.log."""
        p = start_worker(log_file=tmp_path / f"{name}.log" if name else log, extra_env=env,
                         queues=queues, hostname=f"{name}@%h" if name else None)
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(20)
            except Exception:
                os.killpg(p.pid, signal.SIGKILL)
    if os.environ.get("SHOW_WORKER_LOG") and log.exists():
        print(log.read_text()[-5000:])


@pytest.fixture
def small_chunks_profile(tmp_path) -> str:
    """The tiny profile with one clip per task: many small tasks, so a kill lands mid-run."""
    import json

    from pipeline.profiles import PROFILE_DIR

    profile = json.loads((PROFILE_DIR / "tiny.json").read_text())
    profile["chunk_size"] = 1
    path = tmp_path / "tiny-small-chunks.json"
    path.write_text(json.dumps(profile))
    return str(path)


@pytest.fixture(scope="session")
def tiny_models(django_db_setup):
    """The tiny random-weight models, built once into settings.MODEL_DIR/tiny."""
    from django.conf import settings

    from pipeline.testing.tiny_models import ensure_tiny_models

    return ensure_tiny_models(settings.MODEL_DIR / "tiny")
