"""Django settings for the paper pipeline; every deployment knob is an environment variable."""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PAPERPIPELINE_VAR_DIR", BASE_DIR / "var"))


def _env_bool(name: str, default: bool) -> bool:
    """Read a boolean environment variable."""
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str) -> list[str]:
    """Read a comma-separated environment variable."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEV_SECRET_KEY = "dev-only-insecure-key-change-me-in-production-0123456789"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", DEV_SECRET_KEY)
DEBUG = _env_bool("DJANGO_DEBUG", True)
if not DEBUG and SECRET_KEY == DEV_SECRET_KEY:
    # The key also signs JWTs: a public default would let anyone mint a staff token.
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY (and JWT_SIGNING_KEY) when DJANGO_DEBUG is off.")
ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = _env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "channels",
    "papers.apps.PapersConfig",
    "realtime.apps.RealtimeConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files under Daphne, with or without DEBUG
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "paperpipeline.urls"

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
            ],
        },
    },
]

WSGI_APPLICATION = "paperpipeline.wsgi.application"
ASGI_APPLICATION = "paperpipeline.asgi.application"

# Unset DATABASE_URL means the embedded default: SQLite in WAL mode (see papers.apps).
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and _env_bool("DATABASE_POOL", True):
    # A psycopg pool per process: Daphne's consumers make short queries on every connect and subscribe, and
    # a new PostgreSQL connection for each would cost more than the query (Django's advice for ASGI).
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1, "max_size": int(os.environ.get("DATABASE_POOL_MAX", "10")), "timeout": 10,
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so Daphne and Celery subprocesses in end-to-end tests share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_db.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# Serve straight from the apps' and static/ folders: no collectstatic step for `make run`.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "paper-list"
LOGOUT_REDIRECT_URL = "login"

# --- Redis: channel layer, Celery broker and the broadcast publisher share one server. ---
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

# RedisPubSubChannelLayer: one PUBLISH per event per group, fanned out inside each Daphne process,
# instead of RedisChannelLayer's one list push per group member (see docs/architecture.md).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": os.environ.get("CHANNEL_LAYER_PREFIX", "asgi")},
    }
}

# --- WebSocket connections (docs/protocol.md states each limit and its close code) ---
WS_ALLOWED_ORIGINS = _env_list("WS_ALLOWED_ORIGINS", "")
WS_PING_INTERVAL = int(os.environ.get("WS_PING_INTERVAL", "20"))  # protocol pings from Daphne
WS_PING_TIMEOUT = int(os.environ.get("WS_PING_TIMEOUT", "30"))  # no pong within this: connection dropped
WS_AUTH_TIMEOUT = float(os.environ.get("WS_AUTH_TIMEOUT", "10"))  # to authenticate after connecting
WS_REAUTH_NOTICE = float(os.environ.get("WS_REAUTH_NOTICE", "60"))  # ask for a new token this long before expiry
WS_AUTH_GRACE = float(os.environ.get("WS_AUTH_GRACE", "30"))  # after expiry, before closing with 4002
WS_MAX_MESSAGE_BYTES = int(os.environ.get("WS_MAX_MESSAGE_BYTES", "65536"))
WS_RATE_LIMIT = float(os.environ.get("WS_RATE_LIMIT", "20"))  # client messages per second, sustained
WS_RATE_BURST = int(os.environ.get("WS_RATE_BURST", "40"))
WS_MAX_SUBSCRIPTIONS = int(os.environ.get("WS_MAX_SUBSCRIPTIONS", "200"))
WS_MAX_CONNECTIONS_PER_USER = int(os.environ.get("WS_MAX_CONNECTIONS_PER_USER", "20"))
WS_LISTEN_BACKLOG = int(os.environ.get("WS_LISTEN_BACKLOG", "2048"))  # pending TCP connects Daphne's socket holds
# permessage-deflate when the client offers it: each event is compressed once for all compressed sockets.
WS_COMPRESSION = _env_bool("WS_COMPRESSION", True)
# Bytes of non-progress events a connection may queue while its socket is backed up, then close 4011.
WS_SLOW_CLIENT_MAX_BYTES = int(os.environ.get("WS_SLOW_CLIENT_MAX_BYTES", str(1024 * 1024)))

# --- Celery ---
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "papers"
CELERY_TASK_ROUTES = {
    "realtime.tasks.*": {"queue": "system"},
    "papers.tasks.event_log_prune": {"queue": "system"},
    "papers.tasks.stalled_papers_sweep": {"queue": "system"},
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# A pool child whose resident memory passed this (KiB) after a task is replaced: a big paper's heap is not kept.
CELERY_WORKER_MAX_MEMORY_PER_CHILD = int(os.environ.get("CELERY_WORKER_MAX_MEMORY_PER_CHILD", str(512 * 1024)))
SYSTEM_STATUS_INTERVAL = float(os.environ.get("SYSTEM_STATUS_INTERVAL", "5"))
CELERY_BEAT_SCHEDULE = {
    "system-status": {
        "task": "realtime.tasks.system_status_broadcast",
        "schedule": SYSTEM_STATUS_INTERVAL,
        "options": {"expires": SYSTEM_STATUS_INTERVAL},
    },
    "event-log-prune": {"task": "papers.tasks.event_log_prune", "schedule": 3600.0},
    "stalled-papers-sweep": {"task": "papers.tasks.stalled_papers_sweep", "schedule": 60.0},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- API ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=int(os.environ.get("JWT_ACCESS_MINUTES", "15"))),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=1),
    "SIGNING_KEY": os.environ.get("JWT_SIGNING_KEY", SECRET_KEY),
}

# --- Papers ---
PAPER_MAX_UPLOAD_BYTES = int(os.environ.get("PAPER_MAX_UPLOAD_BYTES", str(25 * 1024 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
PAPER_ENTITY_EXTRACTOR = os.environ.get("PAPER_ENTITY_EXTRACTOR", "papers.pipeline.entities.extract_entities")
PAPER_RELATIONSHIP_EXTRACTOR = os.environ.get(
    "PAPER_RELATIONSHIP_EXTRACTOR", "papers.pipeline.relationships.extract_relationships"
)
# A paper whose worker died is retried up to this many deliveries in all, then failed.
PAPER_MAX_ATTEMPTS = int(os.environ.get("PAPER_MAX_ATTEMPTS", "3"))
# A processing paper with no progress for this long is failed by the periodic sweep.
PAPER_STALL_TIMEOUT = timedelta(seconds=float(os.environ.get("PAPER_STALL_TIMEOUT", "300")))
# Limits on one paper's processing (docs in README): over any of them the paper fails with a clear error code.
PAPER_MAX_PAGES = int(os.environ.get("PAPER_MAX_PAGES", "500"))  # too_many_pages, checked before reading pages
PAPER_MAX_TEXT_CHARS = int(os.environ.get("PAPER_MAX_TEXT_CHARS", "2000000"))  # text_too_long
# Seconds: past the soft limit the task stops and fails the paper (time_limit_exceeded); past the hard limit the
# worker kills the pool child, and the paper is failed the same way from the worker's main process.
PAPER_TASK_SOFT_TIME_LIMIT = float(os.environ.get("PAPER_TASK_SOFT_TIME_LIMIT", "300"))
PAPER_TASK_TIME_LIMIT = float(os.environ.get("PAPER_TASK_TIME_LIMIT", "360"))
# Address space of each pipeline pool child (MiB, 0: unlimited); an allocation past it fails the paper with
# out_of_memory instead of swapping the machine. The test papers peak near 210 MiB.
PAPER_WORKER_MAX_MEMORY_MB = int(os.environ.get("PAPER_WORKER_MAX_MEMORY_MB", "1024"))
# Window over which SYSTEM_STATUS.processing_rate counts completed papers.
PROCESSING_RATE_WINDOW = timedelta(minutes=int(os.environ.get("PROCESSING_RATE_WINDOW_MINUTES", "5")))
# A resuming subscriber gets at most this many missed events over the WebSocket; beyond it, the API pages them.
REALTIME_REPLAY_LIMIT = int(os.environ.get("REALTIME_REPLAY_LIMIT", "10000"))
# A paper's event log is kept for its whole life and this long after it reaches a final status.
EVENT_RETENTION = timedelta(days=float(os.environ.get("EVENT_RETENTION_DAYS", "7")))
# step_progress events during a long step are sent at most this often per paper.
PROGRESS_MIN_INTERVAL = float(os.environ.get("PROGRESS_MIN_INTERVAL", "0.25"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
}
