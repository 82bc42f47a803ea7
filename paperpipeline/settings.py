"""Django settings for the paper pipeline; every deployment knob is an environment variable."""

import os
import re
import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp import constants as csp
from django.core.exceptions import ImproperlyConfigured

from paperpipeline import keys, logs, redis_clients

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PAPERPIPELINE_VAR_DIR", BASE_DIR / "var"))


def _env_bool(name: str, default: bool) -> bool:
    """Read a boolean environment variable."""
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str) -> list[str]:
    """Read a comma-separated environment variable."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Never a published or short key; with none configured, each installation generates its own under VAR_DIR.
SECRET_KEY = keys.configured_key("DJANGO_SECRET_KEY", VAR_DIR / "secret_key")
JWT_SIGNING_KEY = keys.jwt_signing_key(SECRET_KEY, VAR_DIR / "jwt_signing_key")
# Off unless asked for: a technical error page shows settings, paths and code to anyone.
DEBUG = _env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = _env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

# HTTPS-only by default (DESIGN.md: defaults are what production needs). DJANGO_HTTPS=false serves plain HTTP:
# `make run` sets it only when it binds a loopback address, and the tests set it for their http clients.
HTTPS = _env_bool("DJANGO_HTTPS", True)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000")) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
# Preloading is a commitment of the whole registrable domain that anyone may submit once the header offers it:
# the operator opts in (DJANGO_HSTS_PRELOAD=true); check --deploy's reminder of it is silenced.
SECURE_HSTS_PRELOAD = _env_bool("DJANGO_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
if os.environ.get("DJANGO_PROXY_SSL_HEADER"):
    # Only behind a TLS proxy that sets this header itself (e.g. X-Forwarded-Proto), whatever the client sent.
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + os.environ["DJANGO_PROXY_SSL_HEADER"].upper().replace("-", "_"), "https")
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI as static files: the schema's browsable page loads nothing from a CDN
    "axes",
    "channels",
    "csp",
    "papers.apps.PapersConfig",
    "realtime.apps.RealtimeConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "paperpipeline.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files under Daphne, with or without DEBUG
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login page into the lockout page
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
# STATIC_ROOT is only filled by collectstatic, which the finders above make optional: no warning when it is absent.
warnings.filterwarnings("ignore", message=re.escape(f"No directory at: {STATIC_ROOT}"), category=UserWarning)
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "paper-list"
LOGOUT_REDIRECT_URL = "login"

# No inline script or style anywhere (the admin's included): scripts and styles come from static files only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF],
        "style-src": [csp.SELF],
        "img-src": [csp.SELF],
        "connect-src": [csp.SELF],  # the middleware adds this host's ws:/wss: origin
        "object-src": [csp.NONE],
        "base-uri": [csp.SELF],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    }
}

# --- Redis: the Celery broker and the realtime bus share one server unless REALTIME_REDIS_URL says otherwise. ---
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

# The realtime bus (realtime/bus.py): every publisher and every Daphne process's fan-out use this one Redis, so
# they can never be split across servers. Channels are "<REALTIME_BUS_PREFIX>:<group>".
REALTIME_REDIS_URL = os.environ.get("REALTIME_REDIS_URL", REDIS_URL)
REALTIME_BUS_PREFIX = os.environ.get("REALTIME_BUS_PREFIX", "paperpipeline")
# The Celery broker's Redis (and the workers' liveness reports in it): REDIS_URL's unless CELERY_BROKER_URL says.
BROKER_REDIS_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
# Each may name a master behind Redis Sentinel (redis+sentinel://…); every Redis client of the project is made from
# them by paperpipeline/redis_clients.py. A malformed one stops start-up here, before any process depends on it.
for _name, _url in (("REDIS_URL", REDIS_URL), ("REALTIME_REDIS_URL", REALTIME_REDIS_URL),
                    ("CELERY_BROKER_URL", BROKER_REDIS_URL)):
    try:
        redis_clients.check_url(_url)
    except ValueError as _error:
        raise ImproperlyConfigured(f"{_name}: {_error}") from None

# No CHANNEL_LAYERS: nothing uses a Channels layer. Events and control messages travel on the bus above, and
# PaperConsumer asks for no layer (Channels gives a consumer none when none is configured), so a connection
# has no per-connection channel or Redis subscription of its own (see docs/architecture.md).

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
# Connections not authenticated yet, per client address and in all, per Daphne process (close 4008 / 4013).
WS_MAX_UNAUTHENTICATED_PER_ADDRESS = int(os.environ.get("WS_MAX_UNAUTHENTICATED_PER_ADDRESS", "50"))
WS_MAX_UNAUTHENTICATED = int(os.environ.get("WS_MAX_UNAUTHENTICATED", "2000"))

# --- Celery ---
# The broker's Redis in kombu's terms (a Sentinel URL becomes kombu's sentinel:// list and master_name). Celery reads
# a CELERY_BROKER_URL environment variable as is, before the setting; its read and write URLs come before both.
# No result backend: nothing reads task results.
CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS = redis_clients.celery_broker(BROKER_REDIS_URL)
CELERY_BROKER_READ_URL = CELERY_BROKER_WRITE_URL = CELERY_BROKER_URL
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
# Reconnects after losing the broker mid-task instead of stopping (a Redis restart or a Sentinel failover).
CELERY_WORKER_CONSUMER = "paperpipeline.celery:BrokerLossConsumer"
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
    "DEFAULT_PAGINATION_CLASS": "papers.api.pagination.LimitOffset",
    "PAGE_SIZE": 50,
    # Every API error answers {"detail": ..., "code": ...} (+ "fields"): docs/protocol.md, "HTTP".
    "EXCEPTION_HANDLER": "papers.api.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# OpenAPI 3 of the REST API (GET /api/schema/, browsable at /api/schema/ui/): for signed-in users only, like
# the API it describes (docs/protocol.md, "HTTP").
SPECTACULAR_SETTINGS = {
    "TITLE": "Paper Pipeline API",
    "DESCRIPTION": "Upload papers, follow their processing, read what was extracted. Live events: the WebSocket "
    "/ws/papers, described by the AsyncAPI document at /api/asyncapi.json (docs/protocol.md).",
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",  # JSON Schema itself: the wire events' schemas (realtime.schemas) go in unchanged
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,  # the upload is a multipart request body, not the paper it returns
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "realtime.openapi.add_paper_event_schemas",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # validatorUrl null: Swagger UI would otherwise send the schema to an outside validator.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None, "persistAuthorization": False},
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=int(os.environ.get("JWT_ACCESS_MINUTES", "15"))),
    # Each refresh returns a new refresh token and blacklists the old one.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    # Tokens carry a digest of the password hash: a password change revokes every access token at once.
    "CHECK_REVOKE_TOKEN": True,
    "REFRESH_TOKEN_LIFETIME": timedelta(days=1),
    "SIGNING_KEY": JWT_SIGNING_KEY,
}

# --- Login throttling (django-axes): /login/, /admin/login/ and /api/token/ ---
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out client before the password is checked
    "django.contrib.auth.backends.ModelBackend",
]
# Locked after this many failures for one account (from any address) or from one address (for any account).
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
# The lock lifts this long after the failure that set it; attempts during the lock do not extend it.
AXES_COOLOFF_TIME = timedelta(seconds=float(os.environ.get("LOGIN_LOCKOUT_SECONDS", "900")))
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_DISABLE_ACCESS_LOG = True  # throttling only: no row per successful login
AXES_VERBOSE = False

# --- Papers ---
PAPER_MAX_UPLOAD_BYTES = int(os.environ.get("PAPER_MAX_UPLOAD_BYTES", str(25 * 1024 * 1024)))
# The server (realtime.server) answers 413 to a request body over this before reading it: an upload plus its
# multipart framing and form fields. A reverse proxy in front should enforce the same limit.
HTTP_MAX_BODY_BYTES = int(os.environ.get("HTTP_MAX_BODY_BYTES", str(PAPER_MAX_UPLOAD_BYTES + 1024 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
PAPER_ENTITY_EXTRACTOR = os.environ.get(
    "PAPER_ENTITY_EXTRACTOR", "papers.pipeline.learned.extract.extract_entities"
)
# The learned extractor's model (tagger + salience weights); without one it falls back to the gazetteer alone.
PAPER_EXTRACTOR_MODEL_DIR = os.environ.get(
    "PAPER_EXTRACTOR_MODEL_DIR", str(BASE_DIR / "papers" / "pipeline" / "learned" / "model")
)
PAPER_RELATIONSHIP_EXTRACTOR = os.environ.get(
    "PAPER_RELATIONSHIP_EXTRACTOR", "papers.pipeline.relationships.extract_relationships"
)
# A paper whose worker died is retried up to this many deliveries in all, then failed.
PAPER_MAX_ATTEMPTS = int(os.environ.get("PAPER_MAX_ATTEMPTS", "3"))
# A processing paper with no progress for this long is failed by the periodic sweep.
PAPER_STALL_TIMEOUT = timedelta(seconds=float(os.environ.get("PAPER_STALL_TIMEOUT", "300")))
# A paper queued this long, with no pipeline task waiting in the broker, is sent again by the sweep; and
# reprocess may act on it (its task was lost, e.g. with Redis's data).
PAPER_QUEUED_RESEND_AFTER = timedelta(seconds=float(os.environ.get("PAPER_QUEUED_RESEND_AFTER", "120")))
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

# --- Logs (paperpipeline/logs.py): human-readable lines by default, one JSON object per line with LOG_FORMAT=json ---
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").strip().lower()
LOGGING_CONFIG = "paperpipeline.logs.configure"
LOGGING = logs.logging_config(LOG_FORMAT, os.environ.get("LOG_LEVEL", "INFO"))

# --- Health (paperpipeline/health.py): /healthz and /readyz on every web process; worker heartbeats ---
# Seconds each readiness check may take, and how long one answer is reused (a flood of probes costs one check).
HEALTH_CHECK_TIMEOUT = float(os.environ.get("HEALTH_CHECK_TIMEOUT", "2"))
HEALTH_CACHE_SECONDS = float(os.environ.get("HEALTH_CACHE_SECONDS", "3"))
# Each Celery worker's main process reports itself alive this often (a Redis entry lasting three intervals), and,
# when WORKER_HEARTBEAT_FILE is set, touches that file (%n: the worker's node name) for a supervisor to check.
WORKER_HEARTBEAT_INTERVAL = float(os.environ.get("WORKER_HEARTBEAT_INTERVAL", "5"))
WORKER_HEARTBEAT_FILE = os.environ.get("WORKER_HEARTBEAT_FILE", "")

# --- Metrics (paperpipeline/metrics.py, scrape.py): /metrics on every web process ---
# A bearer token that lets a scraper in from anywhere; without one only this host's loopback may scrape.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
if METRICS_TOKEN and (len(METRICS_TOKEN) < 32 or not re.fullmatch(r"[\x21-\x7e]+", METRICS_TOKEN)):
    raise ImproperlyConfigured(
        "METRICS_TOKEN must be at least 32 printable characters without spaces "
        '(python -c "import secrets; print(secrets.token_urlsafe(32))").'
    )
