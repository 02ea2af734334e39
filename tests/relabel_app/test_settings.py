import os
import subprocess
import sys
from pathlib import Path

import pytest

from relabel_app.embedded_db import stop_embedded

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args, env_extra=None, drop=("DATABASE_URL",)):
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=120,
    )


def test_check_deploy_passes_with_production_settings():
    r = run_manage(
        "check", "--deploy", "--fail-level", "WARNING",
        env_extra={
            "DJANGO_SETTINGS_MODULE": "relabel_app.settings.production",
            "DJANGO_SECRET_KEY": "x9$k2!" + "q7Lm3Zp0vR8sT1wY4uB6nC5dE2fG9hJ0kA" * 2,
            "DJANGO_ALLOWED_HOSTS": "relabel.example.org",
            "DATABASE_URL": "postgres://u:p@db.example.org:5432/relabel",
            "CELERY_BROKER_URL": "redis://redis.example.org:6379/0",
        },
        drop=(),
    )
    assert r.returncode == 0, r.stderr
    assert "System check identified no issues" in r.stdout


def test_production_settings_refuse_a_missing_secret():
    r = run_manage(
        "check",
        env_extra={"DJANGO_SETTINGS_MODULE": "relabel_app.settings.production",
                   "DATABASE_URL": "postgres://u:p@db.example.org:5432/relabel"},
        drop=("DJANGO_SECRET_KEY",),
    )
    assert r.returncode != 0
    assert "DJANGO_SECRET_KEY" in r.stderr


def test_without_database_url_an_embedded_postgresql_starts_and_is_reused(tmp_path):
    data = tmp_path / "data"
    env = {"RELABEL_DATA_DIR": str(data), "DJANGO_SETTINGS_MODULE": "relabel_app.settings.dev"}
    try:
        code = (
            "from django.db import connection; c = connection.cursor(); "
            "c.execute('select version()'); print(c.fetchone()[0]); "
            "print(connection.settings_dict['NAME'])"
        )
        r = run_manage("shell", "--no-imports", "-c", code, env_extra=env)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("PostgreSQL ")
        assert r.stdout.splitlines()[1] == "relabel"
        pid = (data / "pgdata" / "postmaster.pid").read_text().split()[0]
        # A second process reuses the running server instead of starting another.
        r2 = run_manage("shell", "--no-imports", "-c", code, env_extra=env)
        assert r2.returncode == 0, r2.stderr
        assert (data / "pgdata" / "postmaster.pid").read_text().split()[0] == pid
    finally:
        assert stop_embedded(data / "pgdata")
    assert not (data / "pgdata" / "postmaster.pid").exists()


def test_celery_defaults_to_a_serverless_filesystem_broker(tmp_path):
    code = (
        "from django.conf import settings as s; "
        "print(s.CELERY_BROKER_URL, s.CELERY_TASK_ACKS_LATE, s.CELERY_TASK_SERIALIZER, "
        "s.CELERY_TASK_TIME_LIMIT > s.CELERY_TASK_SOFT_TIME_LIMIT > 0)"
    )
    env = {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x", "RELABEL_DATA_DIR": str(tmp_path)}
    r = run_manage("shell", "--no-imports", "-c", code, env_extra=env,
                   drop=("CELERY_BROKER_URL", "RELABEL_BROKER_DIR"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["filesystem://", "True", "json", "True"]
    assert (tmp_path / "broker" / "in").is_dir()
    env["CELERY_BROKER_URL"] = "redis://127.0.0.1:6379/3"
    r = run_manage("shell", "--no-imports", "-c", code, env_extra=env)
    assert r.stdout.split()[0] == "redis://127.0.0.1:6379/3"


@pytest.mark.django_db
def test_migrations_are_complete():
    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
