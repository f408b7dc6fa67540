"""Process settings, read once at each entrypoint with pydantic-settings and passed down."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/callfleet"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEV_CALL_TOKEN_SECRET = "dev-only-call-token-secret"


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

    # Dispatch: sweeping, admission and dialing.
    # Worker processes per dispatcher; None: one more than the CPUs, because admission
    # waits on PostgreSQL and Redis for about half of each dispatch.
    dispatcher_concurrency: int | None = Field(default=None, ge=1)
    sweep_batch_size: int = 500
    queued_stale_s: float = 120
    channel_lease_ttl_s: float = 90
    media_reservation_ttl_s: float = 90
    capacity_backoff_base_s: float = 2
    capacity_backoff_cap_s: float = 300
    provider_backoff_base_s: float = 15
    provider_backoff_cap_s: float = 900
    ring_timeout_s: int = 25
    machine_detection: bool = False
    dial_unconfirmed_grace_s: float = 60
    call_max_duration_s: float = 3600
    conversation_report_grace_s: float = 10
    number_unavailable_alert_every_s: float = 1800

    provider: Literal["twilio", "instant"] = "twilio"
    twilio_account_sid: str = "AC" + "0" * 32
    twilio_auth_token: SecretStr = SecretStr("simulator-auth-token")
    twilio_api_base_url: str | None = None
    public_base_url: str = "http://127.0.0.1:8000"
    # The base URL Twilio calls, when the API sits behind a proxy that rewrites it; the
    # signature covers the exact URL Twilio used. Unset: the URL the request arrived on.
    twilio_webhook_base_url: str | None = None
    call_token_secret: SecretStr = SecretStr(DEV_CALL_TOKEN_SECRET)
    call_token_max_age_s: float = 300

    # Media workers: one process holds `media_slots` live calls.
    media_worker_id: str | None = None
    media_host: str = "127.0.0.1"
    media_port: int = 8766
    media_public_url: str | None = None
    media_slots: int = 20
    media_heartbeat_interval_s: float = 2
    media_heartbeat_ttl_s: float = 6
    media_handshake_timeout_s: float = 2
    media_drain_timeout_s: float = 30
    # A call the conversation has not ended by then says goodbye and is ended (15 minutes).
    media_max_call_s: float = Field(default=900, gt=0)

    # Real speech and language providers, used when a template names them.
    deepgram_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DEEPGRAM_API_KEY", "CALLFLEET_DEEPGRAM_API_KEY"),
    )
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "CALLFLEET_OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "CALLFLEET_OPENAI_BASE_URL")
    )
    elevenlabs_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ELEVENLABS_API_KEY", "CALLFLEET_ELEVENLABS_API_KEY"),
    )
    cartesia_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("CARTESIA_API_KEY", "CALLFLEET_CARTESIA_API_KEY"),
    )

    webhook_allow_insecure: bool = False
    webhook_timeout_s: float = 10
    webhook_max_attempts: int = 12
    alert_webhook_url: SecretStr | None = None

    # TTS health (media worker). A call switches to its fallback voice after
    # `tts_failure_threshold` failures in a row (an error, no audio within
    # `tts_audio_timeout_s` of a request, or near-silent audio: peak below
    # `tts_silence_peak` of 32767). The provider is then marked degraded fleet-wide for
    # `tts_degraded_cooldown_s`; after it one call probes it for up to `tts_probe_lease_s`.
    # The Redis record outlives the cooldown by `tts_health_record_ttl_s`; one alert per
    # provider and flip kind per `tts_alert_every_s`.
    tts_failure_threshold: int = Field(default=2, ge=1)
    tts_audio_timeout_s: float = Field(default=4.0, gt=0)
    tts_silence_peak: int = Field(default=200, ge=0)
    tts_degraded_cooldown_s: float = Field(default=60.0, gt=0)
    tts_probe_lease_s: float = Field(default=30.0, gt=0)
    tts_health_record_ttl_s: float = Field(default=900.0, gt=0)
    tts_alert_every_s: float = Field(default=1800.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, value: str) -> str:
        return sqlalchemy_url(value)

    @model_validator(mode="after")
    def _production_secrets(self) -> Settings:
        if self.env == "production" and (
            self.call_token_secret.get_secret_value() == DEV_CALL_TOKEN_SECRET
        ):
            raise ValueError("CALLFLEET_CALL_TOKEN_SECRET must be set in production")
        return self
