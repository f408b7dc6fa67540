"""The dispatch's capacity gates (rate peek, channel token, media slot, rate record) taken in
one atomic Redis step, composed from the gates' own `.lua` scripts."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from shared import redis_keys
from shared.coordination._scripts import clock_arg, load_lua, positive, text, to_ms

# Each gate script becomes a local function of the composed one; inside it, KEYS and ARGV
# are the function's parameters, so the gate's source runs unchanged.
_GATES = ("rate_peek", "channel_acquire", "media_reserve", "rate_record")


def _compose() -> str:
    functions = [
        f"local function {name}(KEYS, ARGV)\n{load_lua(name + '.lua')}\nend\n" for name in _GATES
    ]
    return "".join(functions) + load_lua("admission_gates.lua")


_ADMISSION_LUA = _compose()


@dataclass(frozen=True)
class GateNumber:
    """One outbound number the call may go out on, in order of preference."""

    number_id: str
    max_channels: int


@dataclass(frozen=True)
class GatesPassed:
    """Everything the dispatch now holds: the number's index in the offered list, its channel
    token, the media slot and the rate-window member."""

    number_index: int
    channel_token_id: str
    worker_id: str
    stream_url: str
    reservation_id: str
    rate_member: str


@dataclass(frozen=True)
class GateRefused:
    """Which gate said no: `rate_limited` (with how long until a dial fits), `channels_busy`
    or `media_busy`. Nothing is held."""

    reason: str
    retry_after_ms: int = 0


class AdmissionGates:
    """The four capacity gates as one EVALSHA, for the sync client (Celery tasks)."""

    def __init__(self, client: redis.Redis) -> None:
        self._script = client.register_script(_ADMISSION_LUA)

    def take(
        self,
        *,
        merchant_id: str,
        e164: str,
        rate_member: str,
        limit: int,
        window_s: float,
        numbers: Sequence[GateNumber],
        lease_ttl_s: float,
        reservation_ttl_s: float,
        now_ms: int | None = None,
    ) -> GatesPassed | GateRefused:
        if not numbers:
            raise ValueError("numbers must offer at least one outbound number")
        token_id = secrets.token_hex(12)
        reservation_id = secrets.token_hex(12)
        keys = [
            redis_keys.rate_window(merchant_id, e164),
            redis_keys.media_workers(),
            *(redis_keys.channel_leases(n.number_id) for n in numbers),
        ]
        args: list[int | str] = [
            clock_arg(now_ms),
            positive(limit, "limit"),
            to_ms(window_s, "window_s"),
            rate_member,
            to_ms(lease_ttl_s, "lease_ttl_s"),
            token_id,
            to_ms(reservation_ttl_s, "reservation_ttl_s"),
            reservation_id,
            *redis_keys.media_worker_key_affixes(),
            *(positive(n.max_channels, "max_channels") for n in numbers),
        ]
        raw: Any = self._script(keys=keys, args=args)
        verdict = text(raw[0])
        if verdict != "admitted":
            return GateRefused(verdict, int(raw[1]) if len(raw) > 1 else 0)
        return GatesPassed(
            number_index=int(raw[1]) - 1,
            channel_token_id=token_id,
            worker_id=text(raw[2]),
            stream_url=text(raw[3]),
            reservation_id=reservation_id,
            rate_member=rate_member,
        )
