"""Settings for kihonet, all read from the environment.

``KIHONET_ENV`` is ``development`` (the default) or ``production``.  With nothing set the
service runs on an embedded default: a SQLite file, Celery tasks run in-process and mail goes to
the console.  In production every external service must be named explicitly.
"""

import secrets
from datetime import date
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from kihonet.env import env_bool, env_int, env_list, env_required, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

KIHONET_ENV = env_str("KIHONET_ENV", "development")
if KIHONET_ENV not in {"development", "production"}:
    raise ImproperlyConfigured("KIHONET_ENV must be 'development' or 'production'")
PRODUCTION = KIHONET_ENV == "production"

# Where the service keeps what it makes at run time: the SQLite file, the CA's encrypted keys,
# the published CRL.  Never inside the repository in production.
DATA_DIR = Path(env_str("KIHONET_DATA_DIR", str(BASE_DIR / "var")))


def _development_secret_key() -> str:
    """A random key kept in the git-ignored data folder, so sessions survive a restart."""
    path = DATA_DIR / "dev-secret-key"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


if PRODUCTION:
    SECRET_KEY = env_required("SECRET_KEY")
else:
    SECRET_KEY = env_str("SECRET_KEY") or _development_secret_key()

DEBUG = env_bool("DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost"])

# The public base URL that certificates (CRL, OCSP, CA issuer) and mails point to.
KIHONET_BASE_URL = env_str("KIHONET_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "issuance.admin_config.KihonetAdminConfig",  # django.contrib.admin with the back office's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "csp",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_celery_beat",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "issuance",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    # NUL and other control characters in the path, query, form body or cookies: a 400 here,
    # before sessions, views or the database see them.
    "issuance.middleware.RejectBadInputMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "kihonet.urls"
WSGI_APPLICATION = "kihonet.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Parameters bound by the server, and statements that a connection runs again and again
    # (every request's) prepared after the second time: no parsing and planning each time.
    # Behind a transaction-mode PgBouncer set DATABASE_PREPARE_THRESHOLD=none.
    prepare_threshold = env_str("DATABASE_PREPARE_THRESHOLD", "2")
    DATABASES["default"]["OPTIONS"] = {
        "server_side_binding": True,
        "prepare_threshold": None if prepare_threshold == "none" else int(prepare_threshold),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHE_URL = env_str("CACHE_URL")
if CACHE_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    }
elif PRODUCTION:
    raise ImproperlyConfigured("CACHE_URL (a Redis URL) must be set in production")
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", "日本語")]
# The project's messages are written in Japanese in the source (gettext marks them for a
# future translation); Django's own messages come translated with Django. No locale folder.
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(DATA_DIR / "static")))

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- Mail -----------------------------------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 25)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL")
    EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)
elif PRODUCTION:
    raise ImproperlyConfigured("EMAIL_HOST must be set in production")
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "kihonet@example.jp")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
if not CELERY_BROKER_URL and PRODUCTION:
    raise ImproperlyConfigured("CELERY_BROKER_URL must be set in production")
# In-process tasks only where the environment says development and no broker is named.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TIMEZONE = TIME_ZONE
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# The schedule (send_expiry_reminders 09:00, expire_certificates 00:05, refresh_crl hourly, all
# Asia/Tokyo) lives in the database, created by notifications/migrations/0002_default_schedule
# and edited by superusers in the admin.  No CELERY_BEAT_SCHEDULE here: the DatabaseScheduler
# would write it over the admin's changes every time beat starts.

# --- The certificate authority --------------------------------------------------------------
KIHONET_CA_DIR = Path(env_str("KIHONET_CA_DIR", str(DATA_DIR / "ca")))
KIHONET_CA_PASSPHRASE = env_str("KIHONET_CA_PASSPHRASE")
# In development `make run` writes a random passphrase once to this git-ignored file.
KIHONET_CA_PASSPHRASE_FILE = env_str(
    "KIHONET_CA_PASSPHRASE_FILE", "" if PRODUCTION else str(DATA_DIR / "ca-passphrase")
)
KIHONET_CA_KEY_TYPE = env_str("KIHONET_CA_KEY_TYPE", "ec-p256")
# Where the root and issuing keys live: "file" (encrypted PKCS#8 in KIHONET_CA_DIR) or "pkcs11"
# (generated inside a token of an HSM, never extractable). The PIN never on a command line.
KIHONET_CA_KEYSTORE = env_str("KIHONET_CA_KEYSTORE", "file")
KIHONET_CA_PKCS11_MODULE = env_str("KIHONET_CA_PKCS11_MODULE")
KIHONET_CA_PKCS11_TOKEN = env_str("KIHONET_CA_PKCS11_TOKEN", "kihonet-ca")
KIHONET_CA_PKCS11_PIN = env_str("KIHONET_CA_PKCS11_PIN")
KIHONET_CA_PKCS11_PIN_FILE = env_str("KIHONET_CA_PKCS11_PIN_FILE")
KIHONET_CA_PKCS11_ROOT_KEY_LABEL = env_str("KIHONET_CA_PKCS11_ROOT_KEY_LABEL", "kihonet-root-ca")
KIHONET_CA_PKCS11_ISSUING_KEY_LABEL = env_str(
    "KIHONET_CA_PKCS11_ISSUING_KEY_LABEL", "kihonet-issuing-ca"
)
# The delegated OCSP responder certificate (its key in the file store): its life and how long
# before its end a new one is issued.
KIHONET_OCSP_RESPONDER_DAYS = env_int("KIHONET_OCSP_RESPONDER_DAYS", 7)
KIHONET_OCSP_RESPONDER_RENEW_DAYS = env_int("KIHONET_OCSP_RESPONDER_RENEW_DAYS", 3)
KIHONET_CA_ORGANIZATION = env_str("KIHONET_CA_ORGANIZATION", "Kihonet")
KIHONET_CRL_VALIDITY_HOURS = env_int("KIHONET_CRL_VALIDITY_HOURS", 24)
# An OCSP answer's nextUpdate (how long a relying party may cache it).
KIHONET_OCSP_VALIDITY_MINUTES = env_int("KIHONET_OCSP_VALIDITY_MINUTES", 60)
# Renewal challenges a certificate may have open at once (more: 3431).
KIHONET_RENEWAL_MAX_OPEN_CHALLENGES = env_int("KIHONET_RENEWAL_MAX_OPEN_CHALLENGES", 10)
# Where each new CRL (issuing CA's and root's, PEM) is written for the TLS proxy; empty: none.
KIHONET_NGINX_CRL_FILE = env_str("KIHONET_NGINX_CRL_FILE")

# --- The customer's journey -----------------------------------------------------------------
# R11: renewal is offered from this date on (Japan time).
KIHONET_RENEWAL_START_DATE = date.fromisoformat(env_str("KIHONET_RENEWAL_START_DATE", "2026-01-01"))
# Whether a renewal revokes the certificate it renews (as superseded). By default the old one
# stays valid until its own expiry: the customer may still be using it on the day.
KIHONET_RENEWAL_REVOKES_OLD = env_bool("KIHONET_RENEWAL_REVOKES_OLD", False)
KIHONET_RENEWAL_CHALLENGE_MINUTES = env_int("KIHONET_RENEWAL_CHALLENGE_MINUTES", 5)
KIHONET_CLIENT_TOOL_PORT = env_int("KIHONET_CLIENT_TOOL_PORT", 47115)
# The built client tools offered for download (kihonet_agent-windows.exe, kihonet_agent-macos,
# kihonet_agent-linux; `make client-tool` builds the Linux one here). Where a system has no
# build the download page offers the single-file script.
# (A relative folder is taken from the project's root, wherever the process runs.)
KIHONET_CLIENT_TOOL_DIR = BASE_DIR / env_str(
    "KIHONET_CLIENT_TOOL_DIR", str(DATA_DIR / "client-tool")
)
# Where the completion pages send the customer to check the login (R06, R07): the login-check
# name of the TLS proxy, e.g. https://login.kihonet.example.jp/login-check/. Empty: this site's.
KIHONET_LOGIN_CHECK_URL = env_str("KIHONET_LOGIN_CHECK_URL")
KIHONET_ENROLLMENT_TOKEN_MINUTES = env_int("KIHONET_ENROLLMENT_TOKEN_MINUTES", 15)
# How long after issuing, the same acquisition or renewal request sent again (its answer was
# lost) gets the same certificate back, for the same public key only.
KIHONET_ISSUE_REPLAY_HOURS = env_int("KIHONET_ISSUE_REPLAY_HOURS", 24)

# Brute force on the six fields (R03): a person (企保ネットコード and ユーザーID) is locked after
# this many mismatches within the window, an address after its own limit; a company whose users
# get the company limit of mismatches within the window alerts the desk (dashboard), and is not
# locked. Counted atomically in the shared cache before each try is evaluated.
KIHONET_INPUT_LOCK_MAX_FAILURES = env_int("KIHONET_INPUT_LOCK_MAX_FAILURES", 5)
KIHONET_INPUT_LOCK_ADDRESS_MAX_FAILURES = env_int("KIHONET_INPUT_LOCK_ADDRESS_MAX_FAILURES", 20)
KIHONET_INPUT_LOCK_WINDOW_SECONDS = env_int("KIHONET_INPUT_LOCK_WINDOW_SECONDS", 60 * 60)
KIHONET_INPUT_LOCK_SECONDS = env_int("KIHONET_INPUT_LOCK_SECONDS", 60 * 60)
KIHONET_INPUT_ALERT_COMPANY_FAILURES = env_int("KIHONET_INPUT_ALERT_COMPANY_FAILURES", 50)
# The reverse proxies whose X-Forwarded-For and client-certificate headers are believed.
KIHONET_TRUSTED_PROXIES = env_list("KIHONET_TRUSTED_PROXIES", [])

# --- The back office -----------------------------------------------------------------------
# Staff sign in with a password and a TOTP code (django-otp); after this many failures for one
# username (normalised as authentication does) within the window the username is locked for the
# lock time (counted atomically in the cache before each try; the lock is an InputLock row).
KIHONET_STAFF_LOGIN_MAX_FAILURES = env_int("KIHONET_STAFF_LOGIN_MAX_FAILURES", 5)
KIHONET_STAFF_LOGIN_WINDOW_SECONDS = env_int("KIHONET_STAFF_LOGIN_WINDOW_SECONDS", 15 * 60)
KIHONET_STAFF_LOGIN_LOCK_SECONDS = env_int("KIHONET_STAFF_LOGIN_LOCK_SECONDS", 15 * 60)
OTP_TOTP_ISSUER = "kihonet"
# The only sign-in is the back office's: an unsafe or missing ``next`` leads to its index (the
# default, /accounts/profile/, is no page here).
LOGIN_REDIRECT_URL = "admin:index"

# --- Hardening ------------------------------------------------------------------------------
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 30 * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Content-Security-Policy (django-csp): nothing inline, nothing from elsewhere; the pages may
# talk to the client tool on the customer's own PC.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'", "http://127.0.0.1:*"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [KIHONET_BASE_URL])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "kihonet.logging.RedactingFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own handlers (runserver's request lines, the console when DEBUG, mail to
        # ADMINS) would bypass the filter: every line goes to the redacting console instead.
        "django": {"handlers": [], "propagate": True},
        "django.server": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}
