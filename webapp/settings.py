"""Parley's settings: all of them, from the environment, in one place.

Nothing here has a default for a secret outside development. Local runs get their
``SECRET_KEY``, ``DATABASE_URL`` and ``REDIS_URL`` from ``./parley run``, which keeps a
generated key under ``var/`` and starts embedded services when no server is named.
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from inference.config import InferenceConfig
from inference.errors import InferenceError
from inference.ocr import chosen_engine
from webapp.env import env_bool, env_choice, env_int, env_list, env_str
from webapp.redis_urls import InvalidRedisUrl, derive_redis_urls

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("PARLEY_VAR_DIR") or BASE_DIR / "var")

DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. In production set SECRET_KEY to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))'); for a local try use ./parley run."
        )
    # Development only: one key generated once and kept, so sessions survive restarts.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "channels",
    "django_htmx",
    "template_partials",
    "csp",
    "axes",
    "webapp.accounts",
    "webapp.core",
    "webapp.chat",
    "webapp.jobs",
    "webapp.documents",
    "webapp.sentiment",
    "webapp.review",
    "webapp.exports",
    "webapp.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Sees every response after the views and the middleware below it: no redirect leaves the site.
    "webapp.core.redirects.SameSiteRedirectMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "webapp.accounts.middleware.PasswordChangeRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a lockout raised during login into its response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "webapp.urls"
ASGI_APPLICATION = "webapp.asgi.application"
WSGI_APPLICATION = None

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
                "webapp.core.navigation.nav_items",
                "webapp.core.health.degraded_services",
            ],
        },
    },
]


def _database() -> dict[str, object]:
    url = env_str("DATABASE_URL")
    if not url:
        raise ImproperlyConfigured(
            "DATABASE_URL is not set. Use ./parley run (it starts an embedded PostgreSQL) "
            "or set DATABASE_URL=postgres://user:password@host:5432/parley."
        )
    # ASGI serves every request from a fresh thread, and Django's connections belong to a
    # thread: the web process would open a connection per request. It borrows from a pool
    # instead (asgi.py asks for one); the workers' long-lived threads keep theirs.
    pooled = env_bool("PARLEY_DATABASE_POOL", False)
    config = dict(dj_database_url.parse(url, conn_max_age=0 if pooled else 60, conn_health_checks=True))
    if config.get("ENGINE") != "django.db.backends.postgresql":
        raise ImproperlyConfigured(f"DATABASE_URL must point at PostgreSQL (postgres://…), not {url.split(':')[0]}.")
    config.setdefault("OPTIONS", {})
    config["OPTIONS"]["connect_timeout"] = env_int("DATABASE_CONNECT_TIMEOUT", 5, minimum=1)  # type: ignore[index]
    if pooled:
        config["OPTIONS"]["pool"] = {"min_size": 2, "max_size": env_int("PARLEY_DATABASE_POOL_SIZE", 20, minimum=1)}  # type: ignore[index]
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_redis_url = env_str("REDIS_URL")
if not _redis_url:
    raise ImproperlyConfigured(
        "REDIS_URL is not set. Use ./parley run (it starts an embedded Redis) or set REDIS_URL=redis://host:6379."
    )
try:
    REDIS_URLS = derive_redis_urls(_redis_url)
except InvalidRedisUrl as error:
    raise ImproperlyConfigured(str(error)) from None

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 reads with a 5 s socket timeout by default, the same as channels-redis'
            # blocking BZPOPMIN, so an idle websocket would die every 5 s: give reads more time.
            "hosts": [{"address": REDIS_URLS.channels, "socket_timeout": 30}],
            "capacity": 1500,
            "expiry": 30,
        },
    }
}
CACHES = {
    "default": {
        # Django's Redis cache, answering "nothing there" while Redis is unreachable
        # (webapp/core/cache.py): the cache only holds rate-limit counts.
        "BACKEND": "webapp.core.cache.ForgivingRedisCache",
        "LOCATION": REDIS_URLS.cache,
        "OPTIONS": {
            "pool_class": "webapp.core.cache.SharedConnectionPool",
            # a Redis that is away must not hold a request long
            "socket_connect_timeout": 1,
            "socket_timeout": 2,
        },
    }
}

# Celery: JSON only, work acknowledged after it is done, and nothing runs forever.
CELERY_BROKER_URL = REDIS_URLS.broker
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 30 * 60, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 35 * 60, minimum=1)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 5 * 60}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Each kind of job has its own queue, so a long summary never keeps an upload waiting to be
# read: the Procfile gives reading a worker of its own and serves every queue.
# How often each worker sends the jobs made while the broker was unreachable.
PARLEY_JOB_RESEND_SECONDS = env_int("PARLEY_JOB_RESEND_SECONDS", 30, minimum=1)
CELERY_TASK_ROUTES = {
    "webapp.documents.tasks.extract_document": {"queue": "reading"},
    "webapp.documents.tasks.summarize_document": {"queue": "summaries"},
    "webapp.documents.tasks.classify_batch": {"queue": "sentiment"},
}

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"


def _env_rate(name: str, default: str) -> str:
    """A rate in django-ratelimit's notation (``5/h``, ``30/m``, ``100/15m``), checked here
    so that a typo stops the process instead of failing on the first request."""
    value = (env_str(name) or default).strip()
    if not re.fullmatch(r"[1-9][0-9]*/([1-9][0-9]*)?[smhd]", value):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a rate; write a count per period, such as 5/h, 30/m or 100/15m."
        )
    return value


def _signup_default() -> str:
    """``open`` for the embedded local database (a try on one machine, whose first users
    should get in without anyone inviting them), ``invite`` for an operator's own server."""
    host = str(DATABASES["default"].get("HOST") or "")
    return "open" if host.startswith("/") and Path(host).resolve().is_relative_to(VAR_DIR.resolve()) else "invite"


# Sign-up: open to anyone, by an invitation from staff (single use, expiring), or closed.
PARLEY_SIGNUP = env_choice("PARLEY_SIGNUP", _signup_default(), ("open", "invite", "closed"))
PARLEY_INVITATION_DAYS = env_int("PARLEY_INVITATION_DAYS", 7, minimum=1)
# Per client address, django-ratelimit's notation, as are the rates below.
PARLEY_SIGNUP_RATE = _env_rate("PARLEY_SIGNUP_RATE", "5/h")

# Failed-login throttling, against guessing one password from many addresses and trying
# one password on many accounts from one address. django-axes locks an account after
# AXES_FAILURE_LIMIT failures, from whatever addresses, for the cool-off time; axes has
# one limit for all its counters, so the looser one for an address (an office behind one
# NAT shares it) is counted by django-ratelimit in the login view.
PARLEY_LOGIN_COOLOFF_MINUTES = env_int("PARLEY_LOGIN_COOLOFF_MINUTES", 15, minimum=1)
AXES_FAILURE_LIMIT = env_int("PARLEY_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=PARLEY_LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username"]
PARLEY_LOGIN_IP_FAILURE_LIMIT = env_int("PARLEY_LOGIN_IP_FAILURE_LIMIT", 20, minimum=1)
# axes warns that it does not count addresses; the login view does (above).
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
# Reset e-mails per client address and per address asked for; password changes per user.
PARLEY_PASSWORD_RESET_RATE = _env_rate("PARLEY_PASSWORD_RESET_RATE", "5/h")
PARLEY_PASSWORD_CHANGE_RATE = _env_rate("PARLEY_PASSWORD_CHANGE_RATE", "10/h")
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# The login form posts the e-mail in the field Django calls "username".
AXES_USERNAME_FORM_FIELD = "username"

# Mail goes out only through a backend the operator configured (EMAIL_BACKEND, or EMAIL_HOST
# for SMTP). Without one nothing is sent or printed: a password-reset link is a secret, so
# the reset page says reset by e-mail is unavailable instead of writing links to a log.
EMAIL_HOST = env_str("EMAIL_HOST", "") or ""
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "") or ""
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "") or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
PARLEY_MAIL_CONFIGURED = bool(os.environ.get("EMAIL_BACKEND") or EMAIL_HOST)
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.dummy.EmailBackend",
)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "parley@localhost")

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# In development whitenoise serves files straight from the app folders, without collectstatic.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# Security headers. Plain-HTTP local runs set PARLEY_HTTPS=0; production keeps the default.
HTTPS = env_bool("PARLEY_HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
if env_bool("PARLEY_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Models and how they run (PARLEY_MODELS_DIR, PARLEY_CHAT_MODEL, PARLEY_DEVICE, PARLEY_DTYPE
# and the rest): read once, by inference/config.py, which the command line
# (python -m inference) uses without Django. Everything in the web project that loads a
# model passes this on.
try:
    PARLEY_INFERENCE = InferenceConfig.from_env()
except InferenceError as error:
    raise ImproperlyConfigured(str(error)) from None

# Summaries: the registry's model that writes them unless their owner picks another.
PARLEY_SUMMARY_MODEL = env_str("PARLEY_SUMMARY_MODEL") or PARLEY_INFERENCE.models.default
if PARLEY_SUMMARY_MODEL not in PARLEY_INFERENCE.models.names:
    raise ImproperlyConfigured(
        f"PARLEY_SUMMARY_MODEL={PARLEY_SUMMARY_MODEL!r} is no model of PARLEY_MODELS; "
        f"the models are: {', '.join(PARLEY_INFERENCE.models.names)}."
    )

# Chat: limits on what one user may ask for, and the generation worker's batch.
PARLEY_CHAT_MAX_MESSAGE_CHARS = env_int("PARLEY_CHAT_MAX_MESSAGE_CHARS", 16_000, minimum=1)
PARLEY_CHAT_MAX_ANSWER_TOKENS = env_int("PARLEY_CHAT_MAX_ANSWER_TOKENS", 2048, minimum=16)
PARLEY_CHAT_MAX_IN_FLIGHT_PER_USER = env_int("PARLEY_CHAT_MAX_IN_FLIGHT_PER_USER", 3, minimum=1)
# Tokens (prompt and completion, every model, chat and /v1 together) one user may spend a
# day, checked when a message is sent (webapp/accounts/usage.py); 0: no limit.
PARLEY_USER_DAILY_TOKENS = env_int("PARLEY_USER_DAILY_TOKENS", 0, minimum=0)
PARLEY_CHAT_RATE = env_str("PARLEY_CHAT_RATE", "20/m")  # messages per user, django-ratelimit's notation
PARLEY_GENERATION_BATCH_SIZE = env_int("PARLEY_GENERATION_BATCH_SIZE", 32, minimum=1)
# Deltas per second that all streaming answers send together (see webapp/chat/worker.py).
PARLEY_CHAT_UPDATES_PER_SECOND = env_int("PARLEY_CHAT_UPDATES_PER_SECOND", 40, minimum=1)
# Prompt tokens the generation worker prefills per step (0: all waiting at once). Smaller
# groups give a crowd its first tokens sooner for a few percent of throughput (figures in
# docs/decisions.md); summaries keep no limit.
PARLEY_GENERATION_PREFILL_TOKENS = env_int("PARLEY_GENERATION_PREFILL_TOKENS", 256, minimum=0)
# Share links open for signed-in users only, unless the operator lets anyone with a link in.
PARLEY_PUBLIC_SHARE_LINKS = env_bool("PARLEY_PUBLIC_SHARE_LINKS", False)
# Conversations imported from a file (Parley's JSON or ChatGPT's export): the largest file.
PARLEY_IMPORT_MAX_BYTES = env_int("PARLEY_IMPORT_MAX_MB", 50, minimum=1) * 1024 * 1024
RATELIMIT_USE_CACHE = "default"
# While Redis (which holds the counts) is unreachable, rate limits let requests through
# rather than refuse everyone: what is kept in Postgres still holds (quotas, answers in
# flight, jobs waiting, django-axes' lockout of an account after failed log-ins).
RATELIMIT_FAIL_OPEN = True

# Websockets: the largest frame a page may send, in bytes (uvicorn's --ws-max-size in the
# Procfile reads the same variable and closes the socket before reading a larger one;
# the consumers refuse one too, under any server), and the frames one socket may send in
# any 10 seconds before it is closed (a page sends a frame only when its user clicks Stop).
if env_str("PARLEY_CHAT_MAX_FRAME_BYTES") is not None:
    raise ImproperlyConfigured("PARLEY_CHAT_MAX_FRAME_BYTES is now PARLEY_WS_MAX_FRAME_BYTES; rename it.")
PARLEY_WS_MAX_FRAME_BYTES = env_int("PARLEY_WS_MAX_FRAME_BYTES", 4096, minimum=256, maximum=16 * 1024 * 1024)
PARLEY_WS_FRAMES_PER_10S = env_int("PARLEY_WS_FRAMES_PER_10S", 20, minimum=1, maximum=10_000)

# Documents: uploads are checked from their bytes; a file over the limit is dropped while
# it streams in, never held whole.
PARLEY_UPLOAD_MAX_BYTES = env_int("PARLEY_UPLOAD_MAX_MB", 20, minimum=1) * 1024 * 1024
PARLEY_UPLOAD_MAX_FILES = env_int("PARLEY_UPLOAD_MAX_FILES", 10, minimum=1)
FILE_UPLOAD_HANDLERS = ["webapp.documents.uploads.SizeLimitedUploadHandler"]
# Quotas, per user: what documents keep (originals and their text), how many there are,
# jobs waiting or running at once (readings, summaries and sentiment batches together),
# and upload requests, django-ratelimit's notation.
PARLEY_QUOTA_STORAGE_BYTES = env_int("PARLEY_QUOTA_STORAGE_MB", 500, minimum=1) * 1024 * 1024
PARLEY_QUOTA_DOCUMENTS = env_int("PARLEY_QUOTA_DOCUMENTS", 1000, minimum=1)
PARLEY_QUOTA_ACTIVE_JOBS = env_int("PARLEY_QUOTA_ACTIVE_JOBS", 10, minimum=1)
PARLEY_UPLOAD_RATE = _env_rate("PARLEY_UPLOAD_RATE", "30/m")
PARLEY_SUMMARY_BATCH_SIZE = env_int("PARLEY_SUMMARY_BATCH_SIZE", 16, minimum=1)  # chunks summarized at once
# How long OCR may read one document's page images: under Celery's soft time limit, so a
# long scan fails saying how many pages were read rather than that the task ran too long.
PARLEY_OCR_TIME_LIMIT_SECONDS = env_int("PARLEY_OCR_TIME_LIMIT_SECONDS", 20 * 60, minimum=1)
# The OCR engine that reads page images: rapidocr or tesseract, as inference.ocr chooses
# for PARLEY_OCR_ENGINE (auto: Tesseract where its program is installed).
try:
    PARLEY_OCR_ENGINE = chosen_engine((env_str("PARLEY_OCR_ENGINE") or "auto").strip().lower())
except InferenceError as error:
    raise ImproperlyConfigured(str(error)) from None
PARLEY_SENTIMENT_MAX_ROWS = env_int("PARLEY_SENTIMENT_MAX_ROWS", 100_000, minimum=1)
PARLEY_SENTIMENT_REVIEW_BELOW = env_int("PARLEY_SENTIMENT_REVIEW_BELOW_PERCENT", 60, minimum=0) / 100
DATA_UPLOAD_MAX_NUMBER_FILES = 100  # the clear per-request limit above is checked by Parley itself

# Review: how long an opened item stays reserved for its reviewer, and the longest correction.
PARLEY_REVIEW_CLAIM_MINUTES = env_int("PARLEY_REVIEW_CLAIM_MINUTES", 15, minimum=1)
PARLEY_REVIEW_MAX_CORRECTION_CHARS = env_int("PARLEY_REVIEW_MAX_CORRECTION_CHARS", 20_000, minimum=100)

# Metrics (/metrics, webapp/core/metrics.py): every process writes its counts under this
# folder, which prometheus-client reads from the environment when it is first imported, so
# it is set here, before anything imports it; the launcher empties it at each start. A
# scrape is let in with PARLEY_METRICS_TOKEN as a Bearer token, or from a staff member's
# session; with no token set, only staff.
PARLEY_METRICS_DIR = Path(env_str("PROMETHEUS_MULTIPROC_DIR") or VAR_DIR / "prometheus")
PARLEY_METRICS_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(PARLEY_METRICS_DIR)
PARLEY_METRICS_TOKEN = env_str("PARLEY_METRICS_TOKEN", "") or ""

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # LOG_DEBUG names loggers to log at DEBUG whatever LOG_LEVEL says (e.g. webapp.chat.renders:
    # each render of an answer), so one part can be watched without every library's debug lines.
    "loggers": {"axes": {"level": "WARNING"}, **{name: {"level": "DEBUG"} for name in env_list("LOG_DEBUG", [])}},
}

os.environ.setdefault("HF_HUB_OFFLINE", "1")
