"""The media worker's knobs as one frozen value, built from settings at the entrypoint."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from shared.settings import Settings


@dataclass(frozen=True)
class MediaWorkerOptions:
    worker_id: str
    host: str
    port: int
    stream_url: str
    slots: int
    heartbeat_interval_s: float
    heartbeat_ttl_s: float
    handshake_timeout_s: float
    drain_timeout_s: float
    call_token_secret: bytes
    call_token_max_age_s: float
    channel_lease_ttl_s: float
    media_reservation_ttl_s: float

    @classmethod
    def from_settings(cls, settings: Settings, *, port: int | None = None) -> MediaWorkerOptions:
        bound_port = port if port is not None else settings.media_port
        public = settings.media_public_url or f"ws://{settings.media_host}:{bound_port}"
        return cls(
            worker_id=settings.media_worker_id or f"{socket.gethostname()}-{os.getpid()}",
            host=settings.media_host,
            port=bound_port,
            stream_url=public.rstrip("/") + "/stream",
            slots=settings.media_slots,
            heartbeat_interval_s=settings.media_heartbeat_interval_s,
            heartbeat_ttl_s=settings.media_heartbeat_ttl_s,
            handshake_timeout_s=settings.media_handshake_timeout_s,
            drain_timeout_s=settings.media_drain_timeout_s,
            call_token_secret=settings.call_token_secret.get_secret_value().encode(),
            call_token_max_age_s=settings.call_token_max_age_s,
            channel_lease_ttl_s=settings.channel_lease_ttl_s,
            media_reservation_ttl_s=settings.media_reservation_ttl_s,
        )
