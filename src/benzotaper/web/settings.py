"""Django settings: SQLite (WAL) in the user's data directory by default, PostgreSQL via DATABASE_URL.

Security defaults are strict (Argon2, CSP without inline scripts, no framing, short sessions); the
environment can change only the data directory, the database, the secret key and the allowed hosts.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

BASE_DIR = Path(__file__).resolve().parent


def data_dir() -> Path:
    """Where the embedded database and the secret key live (XDG data home unless overridden)."""
    explicit = os.environ.get("BENZOTAPER_DATA_DIR")
    if explicit:
        root = Path(explicit)
    else:
        root = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "benzotaper"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _secret_key(folder: Path) -> str:
    """The secret key from the environment, else one generated once and kept (mode 600) in the data folder."""
    key = os.environ.get("BENZOTAPER_SECRET_KEY")
    if key:
        return key
    path = folder / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def database(url: str | None, folder: Path) -> dict[str, Any]:
    """Django's database settings from a DATABASE_URL (postgres://user:pw@host:port/db) or SQLite."""
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": folder / "clinic.sqlite3",
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;",
                "transaction_mode": "IMMEDIATE",
            },
            # Keep each server thread's connection: opening one (and its PRAGMAs) cost ~0.7 ms a request.
            "CONN_MAX_AGE": None,
        }
    parts = urlparse(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ValueError(f"DATABASE_URL must start with postgres:// or postgresql:// (got {parts.scheme!r})")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/"),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }


DATA_DIR = data_dir()
SECRET_KEY = _secret_key(DATA_DIR)
DEBUG = os.environ.get("BENZOTAPER_DEBUG") == "1"
ALLOWED_HOSTS = [
    h for h in os.environ.get("BENZOTAPER_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h
]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # serves Swagger UI for /api/docs from its own static files (no CDN)
    "benzotaper.web.apps.ClinicConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "benzotaper.web.security.SecurityHeadersMiddleware",
    "benzotaper.web.nul_guard.NulGuardMiddleware",  # before sessions: PostgreSQL text cannot hold NUL
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "benzotaper.web.security.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "benzotaper.web.audit.AuditUserMiddleware",
    "benzotaper.web.idempotency.IdempotencyMiddleware",  # after auth: keys are per user
]

ROOT_URLCONF = "benzotaper.web.urls"
WSGI_APPLICATION = "benzotaper.web.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "benzotaper.web.context.site",
            ],
        },
    }
]

DATABASES = {"default": database(os.environ.get("DATABASE_URL"), DATA_DIR)}

AUTHENTICATION_BACKENDS = ["benzotaper.web.security.ProfileBackend"]
PASSWORD_HASHERS = [
    "benzotaper.web.security.ClinicArgon2Hasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
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

# Sessions end after 8 hours (a shift) or when the browser closes; cookies are not readable by scripts.
SESSION_COOKIE_AGE = 8 * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
_HTTPS = os.environ.get("BENZOTAPER_HTTPS") == "1"
SESSION_COOKIE_SECURE = _HTTPS
CSRF_COOKIE_SECURE = _HTTPS
SECURE_SSL_REDIRECT = _HTTPS
SECURE_HSTS_SECONDS = 31536000 if _HTTPS else 0

# Failed logins: after LOGIN_MAX_FAILURES for one user name, or LOGIN_MAX_FAILURES_PER_ADDRESS from one client
# address (any user names: guessing across accounts), within LOGIN_LOCK_SECONDS, logins pause. The address is
# REMOTE_ADDR, or the last X-Forwarded-For entry when the request comes from a proxy on this machine.
LOGIN_MAX_FAILURES = 5
LOGIN_MAX_FAILURES_PER_ADDRESS = 20
LOGIN_LOCK_SECONDS = 15 * 60
LOGIN_TRUSTED_PROXIES = ("127.0.0.1", "::1")

# API bearer tokens stop working this many days after they were created (make a new one, revoke the old).
API_TOKEN_DAYS = 90

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("pl", "Polski")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = os.environ.get("BENZOTAPER_TIME_ZONE", "Europe/Warsaw")

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "benzotaper.web.static_finder.PlotlyFinder",
]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Logs carry method, path and status only: no request bodies, no patient names (ids are in paths).
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "django": {"handlers": ["console"], "level": "WARNING"},
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}

# Where the patient page and the CDS Hooks cards point clinicians for help lines when no country is set.
DEFAULT_COUNTRY = os.environ.get("BENZOTAPER_COUNTRY", "")

# Each worker keeps the core's results per patient in memory (keys carry the patient's data version, so
# stale entries are never read). Django's default of 300 entries is far too few for a ward: with ~8 keys
# per patient the cache would evict pages while they are still in use.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "OPTIONS": {"MAX_ENTRIES": 20_000},
    }
}
