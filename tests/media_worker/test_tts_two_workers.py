"""TTS failover across the fleet, between two media workers that share only Redis and
PostgreSQL: a provider failing on a call served by one worker switches that call at once and
marks the provider degraded fleet-wide; the next call, served by another worker (its own
`MediaServer`, Redis connection and sessions), starts on the fallback without trying it."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from media_worker.pipeline import ProviderOverrides
from media_worker.providers.flaky import FlakyKnobs
from media_worker.record import CallEventKind
from media_worker.tts_health_call import TTSEvent
from shared.coordination.tts_health import AsyncTtsHealth
from shared.db.models import CallAttempt
from shared.enums import Outcome
from shared.settings import Settings
from tests.integration.fleet import template_document
from tests.media_worker.call_harness import CallRig, call_rig, event_kinds, summary_of

# The template's own voice (offline): a `flaky` primary wrapping a tone, a tone fallback.
DOCUMENT = template_document(
    voice={
        "provider": "flaky",
        "voice_id": "tone",
        "fallback": {"provider": "tone", "voice_id": "backup"},
    }
)
EARS = {"stt": "sim", "llm": "scripted"}


async def confirmed_call(rig: CallRig) -> CallAttempt:
    verdict = await rig.dial("confirm")
    _, outcome, _, _ = await rig.worker_finalized()
    attempt = await rig.attempt_finalized(verdict)
    assert outcome == Outcome.CONFIRMED.value
    assert rig.held_released(attempt)
    return attempt


def agent_turns(attempt: CallAttempt) -> list[tuple[str, str | None]]:
    timings = summary_of(attempt.events)["utterances"]
    return [
        (turn["text"], t["tts_provider"])
        for turn, t in zip(attempt.transcript or [], timings, strict=True)
        if turn["speaker"] == "agent"
    ]


def details(attempt: CallAttempt, kind: str) -> list[dict[str, Any]]:
    return [e["details"] for e in attempt.events if e.get("kind") == kind]


async def test_a_flip_on_one_worker_starts_the_next_call_on_another_on_the_fallback(
    settings: Settings, fleet: Any
) -> None:
    failing = ProviderOverrides(**EARS, tts_flaky=FlakyKnobs(fail_first_n=2))
    async with call_rig(settings, fleet, document=DOCUMENT, deps={"overrides": failing}) as a:
        first = await confirmed_call(a)
        worker_a = a.server.options.worker_id

    # Within the first call: the greeting failed twice on the primary, and was then said once,
    # in full, by the fallback; nothing after it went back to the primary.
    turns = agent_turns(first)
    assert turns[0][0].startswith("Hello, this is Riya calling from Kurta Corner.")
    assert {provider for _, provider in turns} == {"tone"}
    assert details(first, CallEventKind.TTS_FAILOVER) == [
        {"from": "flaky", "to": "tone", "reason": "error"}
    ]
    assert details(first, TTSEvent.PROVIDER_DEGRADED)[0]["provider"] == "flaky"

    health = aioredis.Redis.from_url(settings.redis_url)
    try:
        record = await AsyncTtsHealth(health).read("flaky")
        assert record is not None and record.state == "degraded" and record.flips == 1
        assert record.reported_by == first.provider_call_sid

        # Another worker, a healthy primary this time: the fleet record alone steers it.
        healthy = ProviderOverrides(**EARS)
        async with call_rig(settings, fleet, document=DOCUMENT, deps={"overrides": healthy}) as b:
            assert b.server.options.worker_id != worker_a
            second = await confirmed_call(b)
        after = await AsyncTtsHealth(health).read("flaky")
    finally:
        await health.aclose()

    assert second.media_worker_id == b.server.options.worker_id
    assert first.media_worker_id == worker_a
    assert {provider for _, provider in agent_turns(second)} == {"tone"}
    assert details(second, TTSEvent.STARTED_ON_FALLBACK) == [
        {"provider": "flaky", "fallback": "tone"}
    ]
    assert CallEventKind.TTS_FAILOVER not in event_kinds(second.events)
    # The second worker neither flipped nor restored the record.
    assert after is not None and after.state == "degraded" and after.flips == 1
