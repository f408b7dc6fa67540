"""Admission's knobs as one frozen value, built from settings at the entrypoint."""

from __future__ import annotations

from dataclasses import dataclass

from shared.settings import Settings


@dataclass(frozen=True)
class AdmissionOptions:
    channel_lease_ttl_s: float
    media_reservation_ttl_s: float
    capacity_backoff_base_s: float
    capacity_backoff_cap_s: float
    provider_backoff_base_s: float
    provider_backoff_cap_s: float
    ring_timeout_s: int
    machine_detection: bool
    default_rate_limit_calls: int
    default_rate_limit_window_s: int
    status_callback_url: str
    call_token_secret: bytes
    number_unavailable_alert_every_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> AdmissionOptions:
        return cls(
            channel_lease_ttl_s=settings.channel_lease_ttl_s,
            media_reservation_ttl_s=settings.media_reservation_ttl_s,
            capacity_backoff_base_s=settings.capacity_backoff_base_s,
            capacity_backoff_cap_s=settings.capacity_backoff_cap_s,
            provider_backoff_base_s=settings.provider_backoff_base_s,
            provider_backoff_cap_s=settings.provider_backoff_cap_s,
            ring_timeout_s=settings.ring_timeout_s,
            machine_detection=settings.machine_detection,
            default_rate_limit_calls=settings.rate_limit_calls,
            default_rate_limit_window_s=settings.rate_limit_window_s,
            status_callback_url=settings.public_base_url.rstrip("/") + "/telephony/twilio/status",
            call_token_secret=settings.call_token_secret.get_secret_value().encode(),
            number_unavailable_alert_every_s=settings.number_unavailable_alert_every_s,
        )
