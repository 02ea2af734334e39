"""The test suite: real PostgreSQL (DATABASE_URL in CI, else the embedded server)."""

import os
import tempfile
from pathlib import Path

from .base import *  # noqa: F403
from .base import DATA_DIR, RELABEL_AUDIO_ROOTS, env, filesystem_broker_options

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# A broker folder of the tests' own, so a developer's running worker never takes test tasks.
if not env("CELERY_BROKER_URL", default=""):
    BROKER_DIR = Path(os.environ.setdefault("RELABEL_BROKER_DIR", str(DATA_DIR / "test-broker")))
    CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker_options(BROKER_DIR)

# Tests keep their audio under pytest's tmp_path (in the system temp folder).
RELABEL_AUDIO_ROOTS = [*RELABEL_AUDIO_ROOTS, Path(tempfile.gettempdir())]

# Serve static files from the app folders without collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
