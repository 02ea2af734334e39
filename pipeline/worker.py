"""Start a Celery worker subprocess on every queue (single-machine setups and tests), or
on some of them (`queues=`, the split GPU/CPU topology of the README)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings


def all_queues() -> list[str]:
    """Every queue a task of the project is sent to: the default queue, the stages' queues
    in chain order (pipeline.chain), then the other tasks' own (relabel_app.queues)."""
    from relabel_app.queues import CeleryQueue

    from . import chain

    others = [q.value for q in CeleryQueue if q is not CeleryQueue.DEFAULT]
    return list(dict.fromkeys([CeleryQueue.DEFAULT.value, *chain.queues(), *others]))


def start_worker(*, concurrency: int = 1, log_file: Path | None = None,
                 extra_env: dict | None = None, hostname: str | None = None,
                 queues: list[str] | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(settings.TORCH_THREADS))
    env.setdefault("DJANGO_SETTINGS_MODULE", os.environ.get("DJANGO_SETTINGS_MODULE", ""))
    env["PYTHONPATH"] = str(settings.BASE_DIR) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra_env or {})
    cmd = [
        sys.executable, "-m", "celery", "-A", "relabel_app", "worker", "-Q",
        ",".join(queues or all_queues()),
        "--pool", "solo" if concurrency == 1 else "prefork", "-c", str(concurrency),
        "-l", "info", "--without-gossip", "--without-mingle",
    ]
    if hostname:
        cmd += ["-n", hostname]
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(cmd, cwd=settings.BASE_DIR, env=env, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)


def broker_is_local() -> bool:
    return settings.CELERY_BROKER_URL.startswith("filesystem://")


def workers_alive(timeout: float = 1.0) -> bool:
    if broker_is_local():
        return False  # the filesystem transport has no broadcast: assume none
    from relabel_app.celery import app

    try:
        return bool(app.control.ping(timeout=timeout))
    except Exception:
        return False


class WorkerExited(RuntimeError):
    """The worker a command started for its --wait is gone."""


@contextmanager
def local_worker(*, start: bool, say: Callable[[str], None] = print
                 ) -> Iterator[Callable[[], None]]:
    """For a command that waits on its tasks: start a worker on every queue when ``start``
    and none answers (its log in DATA_DIR/worker.log), stop it on the way out. Yields a
    check to call while waiting: it raises WorkerExited when that worker is gone."""
    worker = None
    if start and not workers_alive():
        log = settings.DATA_DIR / "worker.log"
        worker = start_worker(log_file=log)
        say(f"started a worker (pid {worker.pid}, log {log})")

    def check() -> None:
        if worker is not None and worker.poll() is not None:
            raise WorkerExited(f"the worker exited with code {worker.returncode}")

    try:
        yield check
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
