"""The call pipeline's TTS side, built by `build_call_pipeline` and run for real: both voices
behind the switcher, per-utterance provider attribution, failover within one utterance with
nothing lost, and the fleet-wide health record steering the next call (real Redis)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from media_worker.pipeline import build_call_pipeline
from media_worker.providers.factory import ProviderKeys
from media_worker.providers.flaky import FlakyTTSService
from media_worker.record import CallEventKind, CallRecord
from media_worker.tts_health_call import TTSEvent
from shared.coordination.tts_health import AsyncTtsHealth, StartState
from tests.media_worker.pipeline_harness import (
    FakeTransport,
    agent_turns,
    cod_context,
    flaky_overrides,
    start_call,
)


async def test_the_switcher_holds_both_voices_built_at_call_start(aredis: aioredis.Redis) -> None:
    running = await start_call(aredis, flaky_overrides())
    try:
        call = running.call
        assert [v.provider for v in call.voices] == ["flaky", "tone"]
        assert call.tts_switcher.services == [v.service for v in call.voices]
        assert isinstance(call.voices[0].service, FlakyTTSService)
        assert call.tts_switcher.strategy.active_service is call.voices[0].service
        assert call.tts_health.active_provider == "flaky"
        assert call.vad_enabled is False  # the sim STT's fast path
    finally:
        await running.end()


async def test_each_utterance_is_recorded_with_the_voice_that_spoke_it(
    aredis: aioredis.Redis,
) -> None:
    running = await start_call(aredis, flaky_overrides())
    try:
        await running.speak("Hello from the primary.")
        await running.until(lambda: len(agent_turns(running.record)) == 1)
        # A manual switch (as the health logic does) changes who speaks, and the record follows.
        await running.call.tts_health._injector.switch_to(running.call.voices[1].service)
        await running.speak("Hello from the fallback.")
        await running.until(lambda: len(agent_turns(running.record)) == 2)
    finally:
        await running.end()
    assert agent_turns(running.record) == [
        ("Hello from the primary.", "flaky"),
        ("Hello from the fallback.", "tone"),
    ]
    assert set(running.transport.heard.audio) == {"flaky", "tone"}


async def test_a_failing_voice_switches_within_one_utterance_and_nothing_is_lost(
    aredis: aioredis.Redis,
) -> None:
    running = await start_call(aredis, flaky_overrides(fail_first_n=2))
    try:
        await running.speak("Am I speaking with Asha?")
        await running.until(lambda: bool(agent_turns(running.record)))
        await running.speak("Thank you.")
        await running.until(lambda: len(agent_turns(running.record)) == 2)
    finally:
        await running.end()

    # Tried twice on the primary (threshold 2), then spoken once, by the fallback.
    assert agent_turns(running.record) == [
        ("Am I speaking with Asha?", "tone"),
        ("Thank you.", "tone"),
    ]
    flaky = running.call.voices[0].service
    assert isinstance(flaky, FlakyTTSService) and flaky.plan.requests == 2
    assert running.transport.heard.audio.get("flaky", 0) == 0
    assert running.call.tts_health.active_provider == "tone"
    [failover] = [e for e in running.record.events if e.kind == CallEventKind.TTS_FAILOVER]
    assert failover.details == {"from": "flaky", "to": "tone", "reason": "error"}
    # The flip is on the attempt through the finalize record, and fleet-wide in Redis.
    events = running.record.to_finalize_record()["events"]
    assert any(e["kind"] == CallEventKind.TTS_FAILOVER for e in events)
    assert any(e["kind"] == TTSEvent.PROVIDER_DEGRADED for e in events)
    health = await AsyncTtsHealth(aredis).read("flaky")
    assert health is not None and health.state == "degraded" and health.flips == 1
    assert 0 < await aredis.pttl("cf:tts:flaky")


async def test_a_voice_answering_with_silence_is_a_failure_too(aredis: aioredis.Redis) -> None:
    running = await start_call(aredis, flaky_overrides(silent_audio=True))
    try:
        await running.speak("Your order is on its way.")
        await running.until(lambda: bool(agent_turns(running.record)))
    finally:
        await running.end()
    assert agent_turns(running.record) == [("Your order is on its way.", "tone")]
    [failover] = [e for e in running.record.events if e.kind == CallEventKind.TTS_FAILOVER]
    assert failover.details["reason"] == "silence"


async def test_one_failure_under_the_threshold_is_retried_on_the_same_voice(
    aredis: aioredis.Redis,
) -> None:
    running = await start_call(aredis, flaky_overrides(fail_first_n=1))
    try:
        await running.speak("Hello there.")
        await running.until(lambda: bool(agent_turns(running.record)))
    finally:
        await running.end()
    assert agent_turns(running.record) == [("Hello there.", "flaky")]
    assert running.call.tts_health.active_provider == "flaky"
    assert not [e for e in running.record.events if e.kind == CallEventKind.TTS_FAILOVER]
    assert await AsyncTtsHealth(aredis).read("flaky") is None


@pytest.mark.parametrize("prepared", [False, True], ids=["asked-at-start", "asked-early"])
async def test_a_call_built_after_a_flip_starts_on_the_fallback(
    aredis: aioredis.Redis, prepared: bool
) -> None:
    first = await start_call(aredis, flaky_overrides(fail_first_n=2), call_sid="CA" + "1" * 32)
    try:
        await first.speak("Hello.")
        await first.until(lambda: bool(agent_turns(first.record)))
    finally:
        await first.end()

    # A healthy primary this time: the fleet record alone keeps the new call off it.
    second = await start_call(
        aredis, flaky_overrides(), call_sid="CA" + "2" * 32, prepare_start=prepared
    )
    try:
        assert second.call.tts_health.active_provider == "tone"
        await second.speak("Good morning.")
        await second.until(lambda: bool(agent_turns(second.record)))
    finally:
        await second.end()
    assert agent_turns(second.record) == [("Good morning.", "tone")]
    flaky = second.call.voices[0].service
    assert isinstance(flaky, FlakyTTSService) and flaky.plan.requests == 0
    assert [e.kind for e in second.record.events] == [TTSEvent.STARTED_ON_FALLBACK]


async def test_after_the_cooldown_one_call_probes_and_restores_the_primary(
    aredis: aioredis.Redis,
) -> None:
    fleet = AsyncTtsHealth(aredis)
    # Degraded with its cooldown already over (explicit clock: no waiting).
    await fleet.mark_degraded(
        "flaky", cooldown_s=1, record_ttl_s=600, reason="error", reporter="t", now_ms=1_000
    )
    probe = await start_call(aredis, flaky_overrides(), call_sid="CA" + "3" * 32)
    try:
        assert probe.call.tts_health.active_provider == "flaky"
        # Meanwhile nobody else probes: the claim is held.
        assert await fleet.start_state("flaky", probe_lease_s=30, owner="other") == (
            StartState.DEGRADED
        )
        await probe.speak("Hello again.")
        await probe.until(lambda: bool(agent_turns(probe.record)))
    finally:
        await probe.end()
    assert agent_turns(probe.record) == [("Hello again.", "flaky")]
    assert await fleet.read("flaky") is None  # restored fleet-wide
    kinds = [e.kind for e in probe.record.events]
    assert kinds == [TTSEvent.PROBE_STARTED, TTSEvent.PROVIDER_RESTORED]


async def test_a_failed_probe_switches_at_once_and_extends_the_cooldown(
    aredis: aioredis.Redis,
) -> None:
    fleet = AsyncTtsHealth(aredis)
    await fleet.mark_degraded(
        "flaky", cooldown_s=1, record_ttl_s=600, reason="error", reporter="t", now_ms=1_000
    )
    probe = await start_call(aredis, flaky_overrides(fail_first_n=1), call_sid="CA" + "4" * 32)
    try:
        await probe.speak("Hello again.")
        await probe.until(lambda: bool(agent_turns(probe.record)))
    finally:
        await probe.end()
    # One failure ends a probe (no second try on the primary).
    assert agent_turns(probe.record) == [("Hello again.", "tone")]
    health = await fleet.read("flaky")
    assert health is not None and health.state == "degraded" and health.probe_owner is None
    assert health.degraded_until_ms is not None and health.degraded_until_ms > 1_000 + 1_000


async def test_a_start_choice_of_a_call_that_never_runs_is_dropped(
    aredis: aioredis.Redis,
) -> None:
    call = build_call_pipeline(
        FakeTransport(), cod_context(), "CA" + "4" * 32, aredis, ProviderKeys(),
        record=CallRecord("cod_confirmation"), overrides=flaky_overrides(),
    )  # fmt: skip
    call.tts_health.prepare_start()
    call.tts_health.drop_start_choice()
    with pytest.raises(asyncio.CancelledError):
        await call.tts_health.start_service()
