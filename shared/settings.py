"""Process settings, read once at each entrypoint with pydantic-settings and passed down."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/callfleet"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def sqlalchemy_url(url: str) -> str:
    """Name the psycopg 3 driver explicitly so plain `postgresql://` URLs work too."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Settings(BaseSettings):
    """Everything configurable. `DATABASE_URL` and `REDIS_URL` keep their usual names;
    the rest are read from `CALLFLEET_*` variables."""

    model_config = SettingsConfigDict(env_prefix="CALLFLEET_", extra="ignore", frozen=True)

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("DATABASE_URL", "CALLFLEET_DATABASE_URL"),
    )
    redis_url: str = Field(
        default=DEFAULT_REDIS_URL,
        validation_alias=AliasChoices("REDIS_URL", "CALLFLEET_REDIS_URL"),
    )

    env: Literal["dev", "production"] = "dev"
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"

    api_max_body_bytes: int = 4_000_000
    batch_max_leads: int = 1000
    page_max_leads: int = 500
    default_max_attempts: int = 3
    max_attempts_limit: int = 10

    rate_limit_calls: int = 3
    rate_limit_window_s: int = 3600

    webhook_allow_insecure: bool = False
    alert_webhook_url: SecretStr | None = None

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, value: str) -> str:
        return sqlalchemy_url(value)
