"""Configuration read from the environment.

Everything an operator changes between machines comes from environment variables so that the
same code runs the laptop default (SQLite file + embedded Redis) and a production deployment
(PostgreSQL + managed Redis) without edits.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = Path(os.environ.get("INSTANCE_PATH", ROOT / "instance"))


def _secret_key(production: bool) -> str:
    """A stable key for the default run, without asking a newcomer to invent one.

    The key is generated once into instance/ so sessions survive restarts; in production a
    missing SECRET_KEY is an error, because a generated key on each of several web machines
    would silently log everyone out.
    """
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    if production:
        raise RuntimeError("SECRET_KEY must be set when FLASK_ENV=production")
    INSTANCE.mkdir(parents=True, exist_ok=True)
    path = INSTANCE / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


class Config:
    """Settings for every run; subclasses only override what differs."""

    def __init__(self) -> None:
        self.PRODUCTION = os.environ.get("FLASK_ENV", "").lower() == "production" or (
            os.environ.get("WORKFLOW_CONFIG", "").lower() == "production"
        )
        self.SECRET_KEY = _secret_key(self.PRODUCTION)
        self.DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{INSTANCE / 'workflow.sqlite'}"
        # Empty means: no external Redis; `flask serve` starts an embedded one and sets this.
        self.REDIS_URL = os.environ.get("REDIS_URL", "")
        self.RQ_QUEUE = os.environ.get("RQ_QUEUE", "default")
        # The statistics pages are computed ahead by a job this often; a page older than the
        # max age (a job that stopped running) is computed when asked for instead.
        self.STATISTICS_REFRESH_SECONDS = int(os.environ.get("STATISTICS_REFRESH_SECONDS", 3600))
        self.STATISTICS_MAX_AGE_SECONDS = int(os.environ.get("STATISTICS_MAX_AGE_SECONDS", 2 * 3600))
        self.UPLOAD_DIR = Path(os.environ.get("UPLOAD_DIR", INSTANCE / "uploads"))
        self.MAX_UPLOAD_BYTES = int(os.environ.get("MAX_UPLOAD_BYTES", 10 * 1024 * 1024))
        # A form carries the statute, so the request limit is the upload limit plus room for fields.
        self.MAX_CONTENT_LENGTH = self.MAX_UPLOAD_BYTES + 512 * 1024
        self.API_MAX_BODY_BYTES = int(os.environ.get("API_MAX_BODY_BYTES", 256 * 1024))
        self.PERMIT_VALIDITY_YEARS = int(os.environ.get("PERMIT_VALIDITY_YEARS", 3))
        # Days an NGO has to file the spending report of a released grant tranche.
        self.GRANT_REPORT_DAYS = int(os.environ.get("GRANT_REPORT_DAYS", 60))
        self.THURSDAY_OFF = os.environ.get("THURSDAY_OFF", "1") not in ("0", "false", "no")
        self.TOKEN_HOURS = int(os.environ.get("TOKEN_HOURS", 12))
        # An outbox row enqueued this long ago and still undelivered is enqueued again.
        self.SMTP_HOST = os.environ.get("SMTP_HOST", "")
        self.SMTP_PORT = int(os.environ.get("SMTP_PORT", 25))
        self.MAIL_FROM = os.environ.get("MAIL_FROM", "no-reply@ngo-permits.local")
        self.DELIVERY_LEASE_SECONDS = int(os.environ.get("DELIVERY_LEASE_SECONDS", 300))
        self.BABEL_DEFAULT_LOCALE = "fa"
        self.BABEL_DEFAULT_TIMEZONE = "Asia/Tehran"
        self.BABEL_TRANSLATION_DIRECTORIES = str(ROOT / "translations")
        self.LANGUAGES = ("fa", "en")
        self.WTF_CSRF_TIME_LIMIT = None
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = self.PRODUCTION
        self.PUBLIC_URL = os.environ.get("PUBLIC_URL", "")
        # Operations (docs/deploy.md). Read-only pages may read a replica; the rest, and who is
        # signed in, always come from DATABASE_URL.
        self.DATABASE_REPLICA_URL = os.environ.get("DATABASE_REPLICA_URL", "")
        # Sentinel instead of REDIS_URL: "host:port,host:port" and the monitored master's name.
        self.REDIS_SENTINELS = os.environ.get("REDIS_SENTINELS", "")
        self.REDIS_SENTINEL_MASTER = os.environ.get("REDIS_SENTINEL_MASTER", "mymaster")
        self.REDIS_SENTINEL_PASSWORD = os.environ.get("REDIS_SENTINEL_PASSWORD", "")
        self.REDIS_PASSWORD = os.environ.get("REDIS_PASSWORD", "")
        self.REDIS_DB = int(os.environ.get("REDIS_DB", 0))
        # One JSON object per log line where logs are collected; readable lines on a laptop.
        self.LOG_FORMAT = os.environ.get("LOG_FORMAT", "json" if self.PRODUCTION else "text").lower()
        self.LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
        # /metrics answers loopback without a token, anyone else only with this bearer token.
        self.METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
        # How long /readyz waits for the database and Redis before calling them unreachable.
        self.HEALTH_TIMEOUT_SECONDS = float(os.environ.get("HEALTH_TIMEOUT_SECONDS", 2))
        # Sign-in hardening (workflow/security.py, throttle.py, passwords.py); durations in seconds.
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.REMEMBER_COOKIE_SAMESITE = "Lax"
        self.REMEMBER_COOKIE_SECURE = self.PRODUCTION
        self.SESSION_IDLE_SECONDS = int(os.environ.get("SESSION_IDLE_MINUTES", 30)) * 60
        self.SESSION_MAX_SECONDS = int(os.environ.get("SESSION_MAX_HOURS", 12)) * 3600
        self.LOGIN_MAX_FAILURES = int(os.environ.get("LOGIN_MAX_FAILURES", 10))
        self.LOGIN_FAILURE_WINDOW_SECONDS = int(os.environ.get("LOGIN_FAILURE_WINDOW_MINUTES", 15)) * 60
        # Proxies in front that append to X-Forwarded-For/-Proto (1 behind one nginx); 0 trusts none.
        self.PROXY_COUNT = int(os.environ.get("PROXY_COUNT", 0))
        self.PASSWORD_ARGON2_TIME_COST = int(os.environ.get("PASSWORD_ARGON2_TIME_COST", 2))
        self.PASSWORD_ARGON2_MEMORY_KIB = int(os.environ.get("PASSWORD_ARGON2_MEMORY_KIB", 19456))
        self.PASSWORD_ARGON2_PARALLELISM = int(os.environ.get("PASSWORD_ARGON2_PARALLELISM", 1))
        # Draw letters in this process rather than in a renderer process (workflow/letter_pdf.py).
        self.LETTERS_INLINE = os.environ.get("LETTERS_INLINE", "0") in ("1", "true", "yes")


class TestConfig(Config):
    """Tests pass their own database and Redis; CSRF stays on so tests prove forms carry it."""

    def __init__(self, **overrides: object) -> None:
        super().__init__()
        self.TESTING = True
        # argon2's smallest work factor: the suite creates hundreds of users and signs in often.
        self.PASSWORD_ARGON2_TIME_COST, self.PASSWORD_ARGON2_MEMORY_KIB = 1, 8
        self.LETTERS_INLINE = True
        for key, value in overrides.items():
            setattr(self, key, value)
