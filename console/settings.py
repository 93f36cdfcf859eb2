"""MixGateway settings: everything comes from the environment.

With neither DATABASE_URL nor REDIS_URL set, the product runs in its embedded default:
a SQLite file under var/, an in-process cache, and Celery tasks executed in-process.
"""

import secrets
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()


def env_bool(name: str, default: bool) -> bool:
    """A boolean that is neither true nor false is a mistake worth stopping for."""
    raw = env.str(name, default="").strip().lower()
    if raw == "":
        return default
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_secret(name: str) -> str | None:
    """A secret from NAME, or from the file named by NAME_FILE (container secrets)."""
    value = env.str(name, default="")
    if value:
        return value
    path = env.str(f"{name}_FILE", default="")
    if path:
        return Path(path).read_text().strip()
    return None


DEBUG = env_bool("DEBUG", False)
EMBEDDED = not env.str("DATABASE_URL", default="") and not env.str("REDIS_URL", default="")


def _embedded_secret_key() -> str:
    # One command must run the product on a laptop, so the embedded default keeps a
    # generated key in var/ instead of demanding one. Production must pass SECRET_KEY.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    if EMBEDDED or DEBUG:
        SECRET_KEY = _embedded_secret_key()
    else:
        raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) must be set in production")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# TLS is usually ended by the proxy in front, so plain HTTP on loopback must keep working
# unless the operator asks for the redirect; HSTS and always-secure cookies follow the same
# switch. Without it, cookies are still Secure on answers to HTTPS requests
# (console/secure_cookies.py), as the proxy reports them once trusted (TRUST_X_FORWARDED_PROTO).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = SECURE_SSL_REDIRECT
CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if SECURE_SSL_REDIRECT else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", SECURE_HSTS_SECONDS > 0)
# Browser hardening for the console; the Content-Security-Policy header comes from
# gateway.api.middleware.ContentSecurityPolicyMiddleware (console pages only).
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True  # the console's scripts read the token from the form, never the cookie
CSRF_COOKIE_SAMESITE = "Lax"
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if not SECURE_SSL_REDIRECT:
    # The operator chose HTTP behind a TLS-ending proxy (DESIGN.md's default); the checks
    # for the redirect, HSTS and secure cookies would only repeat that choice back.
    SILENCED_SYSTEM_CHECKS = ["security.W004", "security.W008", "security.W012", "security.W016"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "console.tenancy",  # the tenant side; app label "console"
    "console.pages",
    "gateway",
    "billing",
    "console.api",
]

MIDDLEWARE = [
    "gateway.api.entry.ApiEntryMiddleware",  # every /v1 request stops here, served by gateway.api.urls
    "gateway.api.middleware.RequestIdMiddleware",
    "gateway.api.middleware.ContentSecurityPolicyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "console.secure_cookies.SecureCookiesOverHttpsMiddleware",  # before every middleware that sets cookies
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"

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
                "console.pages.common.current_organization",
            ],
        },
    },
]

if not env.str("DATABASE_URL", default=""):
    VAR_DIR.mkdir(exist_ok=True)
def _under_gevent() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched("socket"))


DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'mixgateway.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the console read while the gateway writes; IMMEDIATE avoids lock upgrades
    # that SQLite can only resolve by failing one of two concurrent writers.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
elif _under_gevent():
    # Django keeps a connection per thread, and gevent makes every greenlet a thread: one
    # persistent connection per open stream would exhaust PostgreSQL. A per-process pool
    # serves all greenlets instead (the warm API path never touches the database). With
    # health checks on, Django has the pool check a connection as it is handed out
    # (psycopg_pool's check_connection), so one PostgreSQL dropped while idle is replaced
    # instead of failing the request that drew it.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1, "max_size": env.int("DATABASE_POOL_SIZE", default=10), "timeout": 10,
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
# Redis Cluster (docs/deploy.md): REDIS_CLUSTER=true with REDIS_URL naming any node, or a
# cluster URL, redis+cluster://host:port[,host:port...]. The live store then spreads the
# organizations over BILLING_REDIS_SHARDS hash tags (billing.live.Layout).
REDIS_CLUSTER = env_bool("REDIS_CLUSTER", False) or REDIS_URL.split("://", 1)[0].endswith("+cluster")
if REDIS_CLUSTER and not REDIS_URL:
    raise ImproperlyConfigured("REDIS_CLUSTER needs REDIS_URL to name a node of the cluster")
# Connections per process and pool (one for billing and limits, one for the cache; per node
# on a cluster); a request that finds them all busy waits up to REDIS_POOL_TIMEOUT_SECONDS.
REDIS_MAX_CONNECTIONS = env.int("REDIS_MAX_CONNECTIONS", default=64)
REDIS_POOL_TIMEOUT_SECONDS = env.float("REDIS_POOL_TIMEOUT_SECONDS", default=5.0)
_REDIS_POOL = {"max_connections": REDIS_MAX_CONNECTIONS, "timeout": REDIS_POOL_TIMEOUT_SECONDS}
if REDIS_CLUSTER:
    # Django's RedisCache speaks to one server only; this one follows the cluster's slots.
    CACHES = {"default": {"BACKEND": "console.redis_cluster_cache.RedisClusterCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="mgcache")}}
elif REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="mgcache"),
            "OPTIONS": {"pool_class": "redis.BlockingConnectionPool", **_REDIS_POOL},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery's Redis transport cannot use a cluster: with one, the broker is a single Redis of
# its own (it holds task messages only: usage and money stay in the live store and the ledger).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="" if REDIS_CLUSTER else REDIS_URL) or "memory://"
if REDIS_CLUSTER and CELERY_BROKER_URL == "memory://":
    raise ImproperlyConfigured("with REDIS_CLUSTER, CELERY_BROKER_URL must name a single Redis for Celery's tasks")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL  # embedded default: tasks run in-process
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves its task to be redelivered
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

# Accounts (django-allauth): email is the login; it must be verified before use.
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_USER_MODEL_USERNAME_FIELD = "username"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
# The subject prefix is SITE_NAME (console.tenancy.accounts.AccountAdapter.format_email_subject).
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if SECURE_SSL_REDIRECT else "http"
ACCOUNT_ADAPTER = "console.tenancy.accounts.AccountAdapter"
ACCOUNT_RATE_LIMITS = {  # allauth's defaults, written out so operators see them
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "confirm_email": "1/3m/key",
    "reset_password": "20/m/ip,5/m/key",
}
LOGIN_REDIRECT_URL = "dashboard"
LOGIN_URL = "account_login"
SOCIALACCOUNT_ONLY = False
# Optional social login, off unless the operator sets both halves of a provider's keys.
SOCIALACCOUNT_PROVIDERS = {}
for _provider in ("github", "google"):
    _client = env.str(f"{_provider.upper()}_CLIENT_ID", default="")
    _secret = env_secret(f"{_provider.upper()}_CLIENT_SECRET")
    if _client and _secret:
        INSTALLED_APPS.append(f"allauth.socialaccount.providers.{_provider}")
        SOCIALACCOUNT_PROVIDERS[_provider] = {"APPS": [{"client_id": _client, "secret": _secret}]}

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update({k: v for k, v in EMAIL_CONFIG.items() if v not in (None, "")})
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="MixGateway <noreply@localhost>")
SITE_NAME = env.str("SITE_NAME", default="MixGateway")
# Where callers reach the gateway, for the console's examples (default: the request's host).
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="")
INVITATION_DAYS = env.int("INVITATION_DAYS", default=7)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every start without it
WHITENOISE_USE_FINDERS = True  # serve static/ without a collectstatic step on a laptop

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "gateway.api.errors.JsonOnlyNegotiation",
    "EXCEPTION_HANDLER": "gateway.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# The OpenAPI description of /v1, served at /v1/openapi.json (gateway/api/openapi.py).
SPECTACULAR_SETTINGS = {
    "TITLE": "MixGateway API",
    "DESCRIPTION": "OpenAI-compatible /v1 of MixGateway: name models as `provider:modelId`; "
                   "every error is OpenAI's envelope plus `request_id`. See docs/api.md.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PUBLIC": True,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": [],
    "SCHEMA_PATH_PREFIX": r"/v1",
    "SCHEMA_PATH_PREFIX_TRIM": False,
    "PREPROCESSING_HOOKS": ["gateway.api.openapi.only_v1"],
    "POSTPROCESSING_HOOKS": ["gateway.api.openapi.add_components"],
}

# The management API (/api/v1, console/api). Operators' provisioning endpoints answer 404
# until ADMIN_API_TOKEN is set; then only to `Authorization: Bearer <ADMIN_API_TOKEN>`.
ADMIN_API_TOKEN = env_secret("ADMIN_API_TOKEN") or ""
if ADMIN_API_TOKEN and len(ADMIN_API_TOKEN) < 32:
    raise ImproperlyConfigured("ADMIN_API_TOKEN must be at least 32 characters (e.g. `openssl rand -hex 32`)")
# Requests per management key (and for the operator token), in DRF's rate syntax.
MANAGEMENT_API_RATE_LIMIT = env.str("MANAGEMENT_API_RATE_LIMIT", default="600/minute")
# How long a POST's Idempotency-Key is remembered.
IDEMPOTENCY_KEY_HOURS = env.int("IDEMPOTENCY_KEY_HOURS", default=24)

# The gateway
GATEWAY_MAX_BODY_BYTES = env.int("GATEWAY_MAX_BODY_BYTES", default=8 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = GATEWAY_MAX_BODY_BYTES
# Request hardening on /v1 (docs/deploy.md): deeper JSON or more messages get a 400.
GATEWAY_MAX_JSON_DEPTH = env.int("GATEWAY_MAX_JSON_DEPTH", default=64)
GATEWAY_MAX_MESSAGES = env.int("GATEWAY_MAX_MESSAGES", default=2048)
# The web server (console/web_worker.py) closes a connection whose request line and headers
# have not all arrived this long after it was accepted or its previous answer ended.
GATEWAY_HEADER_TIMEOUT_SECONDS = env.float("GATEWAY_HEADER_TIMEOUT_SECONDS", default=30.0)
if GATEWAY_HEADER_TIMEOUT_SECONDS <= 0:
    raise ImproperlyConfigured("GATEWAY_HEADER_TIMEOUT_SECONDS must be a number of seconds above 0")
GATEWAY_CONNECT_TIMEOUT_SECONDS = env.float("GATEWAY_CONNECT_TIMEOUT_SECONDS", default=10.0)
GATEWAY_DEFAULT_TIMEOUT_SECONDS = env.float("GATEWAY_DEFAULT_TIMEOUT_SECONDS", default=60.0)
# Idle keep-alive connections kept per upstream origin and process. A gevent worker can
# have hundreds of streams open to one provider; connections beyond the pool are opened
# as needed and closed after use.
GATEWAY_UPSTREAM_POOL_SIZE = env.int("GATEWAY_UPSTREAM_POOL_SIZE", default=256)
# The most bytes an upstream answer may take, as read and again as decoded (a small gzip
# body can inflate to gigabytes); more is a 502 upstream_error, streamed or not.
GATEWAY_MAX_UPSTREAM_BYTES = env.int("GATEWAY_MAX_UPSTREAM_BYTES", default=64 * 1024 * 1024)
# Upstream calls read the variables every HTTP tool reads (lower case first, as curl and
# urllib do): an outbound proxy, the hosts that bypass it, and certificate authorities
# trusted besides the system's (an internal CA in front of a self-hosted model server).
UPSTREAM_HTTPS_PROXY = env.str("https_proxy", default="") or env.str("HTTPS_PROXY", default="")
UPSTREAM_HTTP_PROXY = env.str("http_proxy", default="") or env.str("HTTP_PROXY", default="")
UPSTREAM_NO_PROXY = env.str("no_proxy", default="") or env.str("NO_PROXY", default="")
for _name, _proxy in (("HTTPS_PROXY", UPSTREAM_HTTPS_PROXY), ("HTTP_PROXY", UPSTREAM_HTTP_PROXY)):
    if "://" in _proxy and not _proxy.startswith("http://"):
        raise ImproperlyConfigured(f"{_name} must be an http:// proxy (host:port or http://user:pass@host:port)")
UPSTREAM_CA_FILE = env.str("SSL_CERT_FILE", default="")
UPSTREAM_CA_DIR = env.str("SSL_CERT_DIR", default="")
GATEWAY_CACHE_SECONDS = env.int("GATEWAY_CACHE_SECONDS", default=5)
# How long a process trusts its own memory of a key: the bound on how late another
# process sees a revocation.
GATEWAY_KEY_MEMORY_SECONDS = env.float("GATEWAY_KEY_MEMORY_SECONDS", default=2.0)
# Encrypts upstream keys pasted into the admin; derived from SECRET_KEY when unset.
UPSTREAM_KEYS_ENCRYPTION_KEY = env_secret("UPSTREAM_KEYS_ENCRYPTION_KEY") or ""
# Failover: retries per deployment (before the first byte only), their backoff, and how
# many failures within GATEWAY_COOLDOWN_SECONDS take a deployment out for that long.
GATEWAY_RETRIES = env.int("GATEWAY_RETRIES", default=1)
GATEWAY_RETRY_BACKOFF_SECONDS = env.float("GATEWAY_RETRY_BACKOFF_SECONDS", default=0.25)
GATEWAY_COOLDOWN_AFTER_FAILURES = env.int("GATEWAY_COOLDOWN_AFTER_FAILURES", default=3)
GATEWAY_COOLDOWN_SECONDS = env.int("GATEWAY_COOLDOWN_SECONDS", default=30)

# Observability: /healthz and /readyz are always on; /metrics answers 404 until a token is
# set, then only to `Authorization: Bearer <METRICS_TOKEN>`. With several gunicorn workers,
# set PROMETHEUS_MULTIPROC_DIR (read by prometheus_client itself at import) to an empty
# directory so that any worker's scrape sums all of them.
METRICS_TOKEN = env_secret("METRICS_TOKEN") or ""
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
READYZ_TIMEOUT_SECONDS = env.float("READYZ_TIMEOUT_SECONDS", default=2.0)
# Probes come over plain HTTP from the orchestrator, even when callers are redirected to HTTPS.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]

LOG_FORMAT = env.str("LOG_FORMAT", default="plain" if DEBUG else "json").strip().lower()
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "gateway.observability.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Callers' 4xx answers are normal traffic, and the gateway logs upstream failures itself.
        "django.server": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
        # One line per gateway request (ids, counts, cost, timings; never text), whatever LOG_LEVEL says.
        "mixgateway.requests": {"level": "INFO"},
    },
}

# Billing
# The embedded default is someone trying the product on a laptop: a dollar lets a new
# sign-up call demo:echo at once. Production grants nothing unless the operator says so.
SIGNUP_CREDIT_USD = env.str("SIGNUP_CREDIT_USD", default="1" if EMBEDDED else "0")
BILLING_REDIS_PREFIX = env.str("BILLING_REDIS_PREFIX", default="mgbill")
# How many hash tags the live store spreads organizations over: each tag's slot holds its
# organizations' state, holds and usage events, so every script touches one slot. A
# cluster wants several per master; change it only with the live store drained (docs/deploy.md).
BILLING_REDIS_SHARDS = env.int("BILLING_REDIS_SHARDS", default=16 if REDIS_CLUSTER else 1)
if not 1 <= BILLING_REDIS_SHARDS <= 1024:
    raise ImproperlyConfigured("BILLING_REDIS_SHARDS must be between 1 and 1024")
# Output tokens reserved for a request that sets no max_tokens on a model with no cap.
BILLING_DEFAULT_MAX_OUTPUT_TOKENS = env.int("BILLING_DEFAULT_MAX_OUTPUT_TOKENS", default=4096)
# A reservation whose request never settles (its process died) is released after this.
BILLING_RESERVATION_TTL_SECONDS = env.int("BILLING_RESERVATION_TTL_SECONDS", default=3600)
# A request admitted this long ago that never settled (its web process died) is booked as
# "abandoned", charged its prompt estimate (billing.abandoned). Longer than any upstream
# timeout and any stream you serve; at most the reservation TTL, which it books before.
GATEWAY_ABANDONED_AFTER_SECONDS = env.float("GATEWAY_ABANDONED_AFTER_SECONDS", default=1800.0)
if not 0 < GATEWAY_ABANDONED_AFTER_SECONDS <= BILLING_RESERVATION_TTL_SECONDS:
    raise ImproperlyConfigured("GATEWAY_ABANDONED_AFTER_SECONDS must be above 0 and at most "
                               "BILLING_RESERVATION_TTL_SECONDS")
BILLING_RECONCILE_BATCH = env.int("BILLING_RECONCILE_BATCH", default=500)
# While the stream stays deep, each batch takes twice the last, up to this many events
# (default 4x the batch): fewer per-batch queries per event when there is a backlog.
BILLING_RECONCILE_BATCH_MAX = env.int("BILLING_RECONCILE_BATCH_MAX", default=4 * BILLING_RECONCILE_BATCH)
if not 0 < BILLING_RECONCILE_BATCH <= BILLING_RECONCILE_BATCH_MAX:
    raise ImproperlyConfigured("BILLING_RECONCILE_BATCH must be above 0 and at most BILLING_RECONCILE_BATCH_MAX")
# A batch a worker took but never acknowledged (it died) is taken over after this.
BILLING_RECLAIM_IDLE_SECONDS = env.int("BILLING_RECLAIM_IDLE_SECONDS", default=30)
# Usage records older than this many days are rolled up per day and deleted; 0 keeps all.
# The dashboard reads 30 days of records, so fewer days thin it out (the operator's choice).
USAGE_RETENTION_DAYS = env.int("USAGE_RETENTION_DAYS", default=0)
if USAGE_RETENTION_DAYS < 0:
    raise ImproperlyConfigured("USAGE_RETENTION_DAYS must be 0 (keep forever) or a number of days")

# Stripe Checkout top-ups (billing/stripe_topups.py): off, the button hidden and the webhook
# 404, unless both secrets are set. STRIPE_API_BASE points the library at a stand-in.
STRIPE_SECRET_KEY = env_secret("STRIPE_SECRET_KEY") or ""
STRIPE_WEBHOOK_SECRET = env_secret("STRIPE_WEBHOOK_SECRET") or ""
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="").rstrip("/")


def _whole_cents(name: str, default: str) -> Decimal:
    raw = env.str(name, default=default).strip()
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount <= 0 or amount % Decimal("0.01"):
        raise ImproperlyConfigured(f"{name} must be a positive USD amount in whole cents, not {raw!r}")
    return amount


TOPUP_MIN_USD = _whole_cents("TOPUP_MIN_USD", "5")
TOPUP_MAX_USD = _whole_cents("TOPUP_MAX_USD", "1000")
if TOPUP_MAX_USD < TOPUP_MIN_USD:
    raise ImproperlyConfigured("TOPUP_MAX_USD must be at least TOPUP_MIN_USD")

# Alerts (billing/alerts.py): each delivery is tried up to ALERT_MAX_ATTEMPTS times, the
# waits doubling from ALERT_RETRY_BASE_SECONDS (30 s, 1 min, 2 min, ... at most half an hour).
ALERT_MAX_ATTEMPTS = env.int("ALERT_MAX_ATTEMPTS", default=6)
ALERT_RETRY_BASE_SECONDS = env.float("ALERT_RETRY_BASE_SECONDS", default=30.0)
ALERT_WEBHOOK_TIMEOUT_SECONDS = env.float("ALERT_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# Tenants choose webhook URLs, so by default the worker refuses ones that resolve to loopback,
# private or link-local addresses (the metadata service, Redis...). The embedded default
# runs on someone's laptop, where a receiver on localhost is the point.
ALERT_WEBHOOK_ALLOW_PRIVATE = env_bool("ALERT_WEBHOOK_ALLOW_PRIVATE", EMBEDDED)
if ALERT_MAX_ATTEMPTS < 1 or ALERT_RETRY_BASE_SECONDS < 0 or ALERT_WEBHOOK_TIMEOUT_SECONDS <= 0:
    raise ImproperlyConfigured("ALERT_MAX_ATTEMPTS must be 1 or more, ALERT_RETRY_BASE_SECONDS 0 or more "
                               "and ALERT_WEBHOOK_TIMEOUT_SECONDS above 0")

CELERY_BEAT_SCHEDULE = {
    "reconcile-usage": {"task": "billing.tasks.reconcile_usage", "schedule": env.float("RECONCILE_EVERY_SECONDS", default=2.0)},
    "release-expired-reservations": {"task": "billing.tasks.release_expired_reservations", "schedule": 60.0},
    "book-abandoned-requests": {"task": "billing.tasks.book_abandoned_requests", "schedule": 60.0},
    "prune-usage": {"task": "billing.tasks.prune_usage", "schedule": 24 * 3600.0},
    "resend-overdue-alerts": {"task": "billing.tasks.resend_overdue_alerts", "schedule": 300.0},
    "prune-idempotency-keys": {"task": "console.api.tasks.prune_idempotency_keys", "schedule": 3600.0},
}
