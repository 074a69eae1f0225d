"""Typed settings read from the environment.

`Settings.from_env()` reads and checks every variable; `create_app` calls it, never import time. A
missing or malformed value raises `ConfigError` whose message is one line naming the variable and what
it expects, so start-up stops before anything runs half-configured.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Mapping
from urllib.parse import urlparse

from cryptography.fernet import Fernet


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in schemes or not (parsed.netloc or parsed.path or parsed.query):
        raise ConfigError(f"{name} must be a URL starting with {' or '.join(s + '://' for s in schemes)}, got {value!r}")
    return value


def _bool(name: str, value: str) -> bool:
    low = value.strip().lower()
    if low in {"1", "true", "yes", "on"}:
        return True
    if low in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def _fernet_keys(name: str, value: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in value.split(",") if k.strip())
    if not keys:
        raise ConfigError(f"{name} is required: one or more Fernet keys, comma-separated, newest first "
                          f"(make one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')")
    for k in keys:
        try:
            Fernet(k.encode())
        except (ValueError, TypeError):
            raise ConfigError(f"{name} must hold url-safe base64 Fernet keys of 32 bytes, comma-separated; one is not") from None
    return keys


@dataclass(frozen=True)
class Settings:
    """Every setting Hub24 reads. Names match the environment variables (README: Configuration)."""

    DATABASE_URL: str
    REDIS_URL: str
    SECRET_KEY: str = field(repr=False)
    TOKEN_ENCRYPTION_KEY: tuple[str, ...] = field(repr=False)
    APP_BASE_URL: str = "http://127.0.0.1:5000"
    B24_CLIENT_ID: str = ""
    B24_CLIENT_SECRET: str = field(default="", repr=False)
    B24_OAUTH_URL: str = "https://oauth.bitrix.info"
    B24_ALLOW_HTTP: bool = False
    OPENAI_API_KEY: str = field(default="", repr=False)
    OPENAI_BASE_URL: str = ""
    OPENAI_MODEL: str = "gpt-4o-mini"
    LOG_LEVEL: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Read settings from `env` (default: os.environ). Raises ConfigError naming the bad variable."""
        env = os.environ if env is None else env
        get = lambda k, d="": (env.get(k) or d).strip()  # noqa: E731

        db = get("DATABASE_URL")
        if not db:
            raise ConfigError("DATABASE_URL is required: a PostgreSQL URL such as postgresql://user@host:5432/hub24")
        db = _url("DATABASE_URL", db, ("postgresql", "postgresql+psycopg2", "postgres"))
        if db.startswith("postgres://"):
            db = "postgresql://" + db[len("postgres://"):]
        redis_url = get("REDIS_URL")
        if not redis_url:
            raise ConfigError("REDIS_URL is required: a Redis URL such as redis://127.0.0.1:6379/0")
        redis_url = _url("REDIS_URL", redis_url, ("redis", "rediss", "unix"))
        secret = get("SECRET_KEY")
        if len(secret) < 32:
            raise ConfigError("SECRET_KEY is required: a random string of at least 32 characters")
        level = get("LOG_LEVEL", "INFO").upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
        openai_base = get("OPENAI_BASE_URL")
        allow_http = _bool("B24_ALLOW_HTTP", get("B24_ALLOW_HTTP", "false"))
        oauth_url = _url("B24_OAUTH_URL", get("B24_OAUTH_URL", cls.B24_OAUTH_URL), ("http", "https")).rstrip("/")
        if oauth_url.startswith("http://") and not allow_http:
            raise ConfigError("B24_OAUTH_URL must be https:// (plain http only with B24_ALLOW_HTTP=true, for the sandbox)")
        return cls(
            DATABASE_URL=db,
            REDIS_URL=redis_url,
            SECRET_KEY=secret,
            TOKEN_ENCRYPTION_KEY=_fernet_keys("TOKEN_ENCRYPTION_KEY", get("TOKEN_ENCRYPTION_KEY")),
            APP_BASE_URL=_url("APP_BASE_URL", get("APP_BASE_URL", cls.APP_BASE_URL), ("http", "https")).rstrip("/"),
            B24_CLIENT_ID=get("B24_CLIENT_ID"),
            B24_CLIENT_SECRET=get("B24_CLIENT_SECRET"),
            B24_OAUTH_URL=oauth_url,
            B24_ALLOW_HTTP=allow_http,
            OPENAI_API_KEY=get("OPENAI_API_KEY"),
            OPENAI_BASE_URL=_url("OPENAI_BASE_URL", openai_base, ("http", "https")) if openai_base else "",
            OPENAI_MODEL=get("OPENAI_MODEL", cls.OPENAI_MODEL),
            LOG_LEVEL=level,
        )

    def as_flask_config(self) -> dict:
        """The settings as Flask config keys (same names)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}
