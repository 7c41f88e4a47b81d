"""AlphaPulse settings: every difference between machines comes from the environment.

Values are read with django-environ from real environment variables first, then
from `.env` (written by `make setup`), or the file that ENV_FILE names
(`.env.citus`: the Citus cluster of `make citus-up`). There are no secret defaults: a missing
SECRET_KEY or DATABASE_URL stops start-up with django-environ's clear error.
"""

import os
import tomllib
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import environ
import orjson
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# Real environment variables win over the file (read_env does not overwrite).
environ.Env.read_env(BASE_DIR / os.environ.get("ENV_FILE", ".env"), overwrite=False)

SECRET_KEY = env.str("SECRET_KEY")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

# A TLS deployment (docs/security.md, "HTTPS"): HTTPS=true marks the session
# and CSRF cookies Secure, redirects plain HTTP to HTTPS and sends HSTS; behind
# a proxy that terminates TLS, SECURE_PROXY_SSL_HEADER names the header it
# sets ("X-Forwarded-Proto"), which the proxy must overwrite on every request.
# `manage.py check --deploy --fail-level WARNING` is clean for this profile.
HTTPS = env.bool("HTTPS", default=False)
_proxy_header = env.str("SECURE_PROXY_SSL_HEADER", default="").strip()
if _proxy_header:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_header.upper().replace("-", "_"), "https")
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
# /health stays answerable over plain HTTP for a load balancer's probe.
SECURE_REDIRECT_EXEMPT = [r"^health$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=HTTPS)

# RLS_ENABLED=false is the scenario-1 flag: the app stops setting the tenant
# variable and isolation rests on the tenant-scoped ORM alone (docs/runbook.md).
RLS_ENABLED = env.bool("RLS_ENABLED", default=True)

INSTALLED_APPS = [
    # First: for a command name, the first app listed wins, so tenants'
    # createsuperuser and changepassword replace django.contrib.auth's.
    "tenants",
    # django.contrib.admin, with the two-factor site (django-otp) as admin.site.
    "platform_ops.admin_config.StaffAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # The staff's second factor: the device models are platform_ops' (docs/admin.md).
    "django_otp",
    "trading",
    "jobs",
    "platform_ops",
]

MIDDLEWARE = [
    # Outermost: times and counts every request, refusals of later middleware included.
    "platform_ops.middleware.RequestObservabilityMiddleware",
    # Before anything that can refuse: a browser's preflight OPTIONS carries no
    # token, and django-cors-headers answers it here, before the tenant middleware.
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # First, so sessions and auth of /admin/ requests use the owner connection.
    "tenants.http.middleware.StaffDatabaseMiddleware",
    # Serves the admin's static files under gunicorn (DEBUG is off).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): which second-factor device, if any, verified this
    # session (lazy: only the admin asks). /admin/ admits verified staff only.
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # The RateLimit-* headers the throttles leave on the request (tenants/http/throttling.py).
    "tenants.http.throttling.RateLimitHeadersMiddleware",
    # Last, so the tenant transaction wraps only the view.
    "tenants.http.middleware.TenantContextMiddleware",
]

# Browser front-ends on other origins (django-cors-headers). Only the listed
# origins get Access-Control-Allow-Origin; an origin not on the list gets no CORS
# header at all, so the browser refuses to hand it the answer. Empty by default.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/.*$"
# Bearer tokens, not cookies: no credentials mode needed.
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_HEADERS = ("accept", "authorization", "content-type", "idempotency-key")
# Headers a browser script may read besides the simple ones: the rate-limit
# state (tenants/http/throttling.py) and when to retry.
CORS_EXPOSE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After")

ROOT_URLCONF = "alphapulse.urls"
WSGI_APPLICATION = "alphapulse.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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


def _database(url_var: str) -> dict:
    config = env.db_url(url_var, engine="django.db.backends.postgresql")
    # Django's PostgreSQL backend, with a read-only transaction's COMMIT not waited for.
    config["ENGINE"] = "tenants.database.backend"
    config["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    config["CONN_HEALTH_CHECKS"] = True
    config["OPTIONS"] = {
        # No server-side prepared statements: they do not survive PgBouncer in
        # transaction mode, and nothing here needs them (an RLS plan is not
        # keyed on the tenant value, so one prepared plan would serve all).
        "prepare_threshold": None,
        "connect_timeout": env.int("DB_CONNECT_TIMEOUT", default=3),
    }
    if env.bool("DB_POOL", default=False):
        # Django's psycopg pool (per process) instead of one persistent
        # connection per thread; Django requires CONN_MAX_AGE=0 with it. The
        # tenant setting is transaction-local, so a pooled connection carries
        # nothing from one request to the next (tests/tenants/test_live_server.py).
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"]["pool"] = {
            "min_size": env.int("DB_POOL_MIN", default=1),
            "max_size": env.int("DB_POOL_MAX", default=8),
            "timeout": env.int("DB_POOL_TIMEOUT", default=5),
        }
    return config


DATABASES = {
    # The app role: not a superuser, no BYPASSRLS, owns nothing. Every API
    # request runs here, under row-level security.
    "default": _database("DATABASE_URL"),
    # The owner role (holds rls_bypass_role): migrate, the admin site, backups
    # and management commands that are platform work, never API requests.
    "owner": _database("MIGRATION_DATABASE_URL"),
}
# The owner creates the test database (tests/conftest.py); a distinct name lets
# several suites run on one cluster at once.
# The app connection checks no health before each request (a `SELECT 1`, one
# round trip per request): the tenant middleware retries a request once when
# its kept connection turns out dead before anything ran (tenants/http/middleware.py).
DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
# Server-side binding: statements reach PostgreSQL as `... = $1` with the
# values apart, so pg_stat_activity and pg_stat_statements, readable by every
# session of the app role, show no tenant's values. `SET LOCAL` takes no
# parameters and is quoted by psycopg instead (tenants/database/tenant_setting.py). The owner keeps
# Django's default client-side binding: DDL takes no parameters either.
DATABASES["default"]["OPTIONS"]["server_side_binding"] = True
DATABASES["owner"]["TEST"] = {"NAME": env.str("TEST_DB_NAME", default="test_alphapulse")}
DATABASE_ROUTERS = ["tenants.database.routers.StaffDatabaseRouter"]

AUTH_USER_MODEL = "tenants.User"
AUTHENTICATION_BACKENDS = ["tenants.http.auth.PlatformStaffBackend"]
# Usernames are unique per tenant (a global unique index would tell tenant A
# which names exist in tenant B); PlatformStaffBackend scopes admin logins.
SILENCED_SYSTEM_CHECKS = ["auth.W004"]
if not HTTPS and set(ALLOWED_HOSTS) <= {"127.0.0.1", "localhost", "::1"}:
    # Served on loopback only (make run): plain HTTP is all there is, nothing to
    # warn about. Any other host without HTTPS=true keeps check --deploy loud.
    SILENCED_SYSTEM_CHECKS += ["security.W004", "security.W008", "security.W012", "security.W016"]
PLATFORM_TENANT_SLUG = env.str("PLATFORM_TENANT_SLUG", default="platform")
# The staff's second factor (platform_ops.otp_secrets): TOTP seeds are encrypted
# under keys derived from these (comma-separated: the first encrypts, all
# decrypt), or from SECRET_KEY (and SECRET_KEY_FALLBACKS) when empty.
OTP_ENCRYPTION_KEY = env.str("OTP_ENCRYPTION_KEY", default="")
# The name authenticator apps show beside the account.
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="AlphaPulse")

# Django's four validators, for every path that sets a password (the commands,
# the admin, the API all call tenants.services / validate_password): a common
# password such as "password" or "12345678" is refused everywhere.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Argon2 is not pinned here; PBKDF2 stays the hasher. Tests swap in MD5 for speed.
PASSWORD_HASHERS = env.list(
    "PASSWORD_HASHERS",
    default=["django.contrib.auth.hashers.PBKDF2PasswordHasher"],
)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# A hostile client cannot make the server parse a huge body.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=256 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenants.http.auth.TenantJWTAuthentication"],
    # Who may do what inside a tenant: the access table (tenants/access.py), read by RoleAccess.
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "tenants.http.permissions.RoleAccess",
    ],
    # orjson: the bytes DRF's JSONRenderer writes (tests/alphapulse/test_json_rendering.py), a
    # 50-row page in ~40 us instead of ~350 us. NON_STR_KEYS: DRF keys a list field's errors by
    # position (an int), which the stdlib encoder turns into "0" and orjson refuses by default.
    "DEFAULT_RENDERER_CLASSES": ["drf_orjson_renderer.renderers.ORJSONRenderer"],
    "ORJSON_RENDERER_OPTIONS": (orjson.OPT_NON_STR_KEYS,),
    "DEFAULT_PARSER_CLASSES": ["alphapulse.parsers.SafeJSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": [
        "tenants.http.throttling.TenantTierThrottle",
        "tenants.http.throttling.ApiKeyThrottle",  # a key's own budget too (API_KEY_RATE_LIMIT)
    ],
    "DEFAULT_PAGINATION_CLASS": "trading.pagination.NewestFirstCursorPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "alphapulse.exceptions.json_exception_handler",
    # Proxies in front of gunicorn that append to X-Forwarded-For. 0: the
    # client address is REMOTE_ADDR, so a forged header cannot dodge the
    # login rate limit. Set it to the number of trusted proxies.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
    "UNAUTHENTICATED_USER": None,
}

# Requests per tenant by subscription tier (tenants/http/throttling.py); 429 with
# Retry-After beyond. Override as TENANT_RATE_LIMITS=free=60/min,pro=none,...
TENANT_RATE_LIMITS = {
    "free": "120/min",
    "starter": "600/min",
    "pro": "3000/min",
    "enterprise": "12000/min",
    **env.dict("TENANT_RATE_LIMITS", default={}),
}


def _seat_limits(overrides: dict[str, str]) -> dict[str, int | None]:
    """Active users per tenant by subscription tier ('none' or 'unlimited': no limit)."""
    limits: dict[str, int | None] = {"free": 3, "starter": 10, "pro": 50, "enterprise": None}
    for tier, value in overrides.items():
        text = value.strip().lower()
        if text in ("none", "unlimited"):
            limits[tier] = None
        elif text.isdigit():
            limits[tier] = int(text)
        else:
            raise ImproperlyConfigured(f"TENANT_SEAT_LIMITS: {tier}={value!r} is not a number of seats or 'none'.")
    return limits


# Seats: active users per tenant by tier (tenants.services.check_seat_free); a
# new or reactivated user past them is refused (409). Override as
# TENANT_SEAT_LIMITS=free=5,enterprise=none
TENANT_SEAT_LIMITS = _seat_limits(env.dict("TENANT_SEAT_LIMITS", default={}))
# Login and refresh attempts per client address.
LOGIN_RATE_LIMIT = env.str("LOGIN_RATE_LIMIT", default="30/min")
# Redis (scripts/redis.sh writes REDIS_URL to .env): Django's cache, so the
# rate-limit counters are shared by every worker and exact; and Celery's
# broker and results, on the next database number unless set apart.
REDIS_URL = env.str("REDIS_URL")


def _redis_database(url: str, number: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{number}"))


CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        # Every key made inside a tenant context carries the tenant (docs/jobs.md).
        "KEY_FUNCTION": "tenants.cache_keys.tenant_cache_key",
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="alphapulse"),
        "OPTIONS": {
            "socket_connect_timeout": env.float("REDIS_CONNECT_TIMEOUT", default=2),
            "socket_timeout": env.float("REDIS_TIMEOUT", default=2),
        },
    }
}

# Celery (alphapulse/celery.py, jobs/): tenant jobs under tenant context.
_redis_db = int(urlsplit(REDIS_URL).path.strip("/") or 0)
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=_redis_database(REDIS_URL, _redis_db + 1))
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=CELERY_BROKER_URL)
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="alphapulse")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = timedelta(days=1)
CELERY_RESULT_EXTENDED = True
# A task is acknowledged only once it has finished, so a worker killed halfway
# leaves it on the queue for another; the jobs' natural keys make the rerun
# write nothing twice.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Seconds before a message taken by a worker that vanished is handed out
    # again. Longer than the longest job, or a slow job runs twice at once.
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    "unacked_restore_interval": env.int("CELERY_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": env.int("CELERY_RESTORE_THROTTLE", default=10),
}
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=900)
# Job messages are signed whole (jobs.tenant_tasks); one older than this is
# refused, and a consumed message id is remembered in Redis a little longer.
JOB_MESSAGE_MAX_AGE = env.int("JOB_MESSAGE_MAX_AGE", default=86400)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    # A platform task that sends one job per active tenant (jobs.tasks.fan_out).
    "portfolio-snapshots": {
        "task": "jobs.fan_out",
        "schedule": crontab(*env.str("JOBS_SNAPSHOT_CRON", default="0 * * * *").split()),
        "args": ("portfolio_snapshot",),
    },
    "risk-metrics": {
        "task": "jobs.fan_out",
        "schedule": crontab(*env.str("JOBS_RISK_CRON", default="15 0 * * *").split()),
        "args": ("risk_metrics",),
    },
    # Idempotency-Keys live 24 hours (tenants.http.idempotency); an expired key is also taken over on reuse.
    "idempotency-keys": {
        "task": "jobs.fan_out",
        "schedule": crontab(*env.str("JOBS_IDEMPOTENCY_PURGE_CRON", default="30 * * * *").split()),
        "args": ("purge_idempotency_keys",),
    },
}
# Most agent signals one POST /api/agent-signals/bulk/ may carry.
AGENT_SIGNALS_BULK_MAX = env.int("AGENT_SIGNALS_BULK_MAX", default=500)

# The token keys (tenants.signing_keys): JWT_SIGNING_KEYS=kid:key,... (the first
# signs, all verify; wins over JWT_SIGNING_KEY, which alone is the ring
# default:<key>). With JWT_ALGORITHM EdDSA or RS256 each key is a PEM file's path.
JWT_ALGORITHM = env.str("JWT_ALGORITHM", default="HS256")
JWT_SIGNING_KEYS = env.str("JWT_SIGNING_KEYS", default="")
JWT_SIGNING_KEY = env.str("JWT_SIGNING_KEY", default="")
if not (JWT_SIGNING_KEYS or JWT_SIGNING_KEY):
    raise ImproperlyConfigured("Set JWT_SIGNING_KEYS (kid:key,...) or JWT_SIGNING_KEY: tokens need a key.")
# API keys are stored as HMAC-SHA256(API_KEY_HASH_KEY, key) (tenants.api_keys);
# changing it invalidates every API key. Defaults to one derived from SECRET_KEY.
API_KEY_HASH_KEY = env.str("API_KEY_HASH_KEY", default="")
# An API key's last_used_at is written at most once per this many seconds.
API_KEY_LAST_USED_SECONDS = env.int("API_KEY_LAST_USED_SECONDS", default=300)
# Requests per API key, on top of the tenant's tier limit ('none': no own limit).
API_KEY_RATE_LIMIT = env.str("API_KEY_RATE_LIMIT", default="600/min")

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(hours=env.int("JWT_REFRESH_HOURS", default=24)),
    # Read by simplejwt's own classes only; ours sign and verify through tenants.signing_keys.
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SIGNING_KEY or SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "UPDATE_LAST_LOGIN": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "AlphaPulse API",
    "DESCRIPTION": "Multi-tenant trading API. Every route but auth and health runs as "
    "the tenant named in the bearer token, enforced by PostgreSQL row-level security.",
    # The project's version, said once: pyproject.toml (CHANGELOG.md says what changed).
    "VERSION": tomllib.loads((BASE_DIR / "pyproject.toml").read_text())["project"]["version"],
    # Every answer documented: the errors every route shares (alphapulse/openapi.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "alphapulse.openapi.document_error_responses",
    ],
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from pinned static files (drf-spectacular-sidecar, served by
    # whitenoise), never from a CDN: no third party can change the docs page's
    # scripts, and it works without internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Zero-downtime migrations (tenants/catalog/ddl.py; docs/design.md, "Zero-downtime DDL").
MIGRATION_LOCK_TIMEOUT_MS = env.int("MIGRATION_LOCK_TIMEOUT_MS", default=200)
MIGRATION_LOCK_RETRIES = env.int("MIGRATION_LOCK_RETRIES", default=50)
TENANT_BACKFILL_BATCH_SIZE = env.int("TENANT_BACKFILL_BATCH_SIZE", default=5000)

# /metrics answers only "Authorization: Bearer <METRICS_TOKEN>"; unset, it answers 401 to everyone.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# One JSON line per request on stderr (platform_ops/request_log.py).
REQUEST_LOG = env.bool("REQUEST_LOG", default=True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
}
