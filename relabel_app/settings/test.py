"""The test suite: real PostgreSQL (DATABASE_URL in CI, else the embedded server)."""

import os

from .base import *  # noqa: F403
from .base import DATA_DIR, env

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# A broker folder of the tests' own, so a developer's running worker never takes test tasks.
if not env("CELERY_BROKER_URL", default=""):
    from pathlib import Path

    BROKER_DIR = Path(os.environ.setdefault("RELABEL_BROKER_DIR", str(DATA_DIR / "test-broker")))
    for _sub in ("in", "processed", "control"):
        (BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "in"),
        "data_folder_out": str(BROKER_DIR / "in"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        # An idle worker checks the folder this often (default 1 s: slow hand-offs).
        "polling_interval": 0.1,
        "store_processed": False,
    }

# Serve static files from the app folders without collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
