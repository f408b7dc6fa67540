"""A live call's life in the session: its held capacity renewed while it lasts, and its end
by a drain, a length cap, a provider that cannot be built, or a pipeline that dies: each
recorded with its cause and finalized once, with the channel and media slot given back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pipecat.frames.frames import CancelWorkerFrame
from pipecat.processors.frame_processor import FrameDirection
from websockets.asyncio.server import ServerConnection

from media_worker.admission import Admitted
from media_worker.pipeline import ProviderOverrides
from media_worker.server import CallRunner
from media_worker.session import CAP_GOODBYE, CallSession, SessionDeps, SessionEventKind
from shared.enums import Outcome
from shared.settings import Settings
from tests.media_worker.call_harness import CallRig, call_rig, event_kinds, summary_of, until

LINGERING = {"linger_s": 60.0}  # a silent callee stays on the line until the test ends it
RENEW_TTL_S = 300.0  # beyond the dispatcher's 90 s: a lease this long was renewed


class Sessions:
    """A call runner that keeps each `CallSession` it starts (to reach its pipeline)."""

    def __init__(self) -> None:
        self.started: list[CallSession] = []

    def runner(self, deps: SessionDeps) -> CallRunner:
        async def run(connection: ServerConnection, admitted: Admitted) -> None:
            session = CallSession(connection, admitted, deps)
            self.started.append(session)
            await session.run()

        return run


class GatedSleep:
    """The session's `sleep`: a wait of `gated_s` returns only when the test opens the gate
    (`open(n)` lets n through); every other wait is real."""

    def __init__(self, gated_s: float) -> None:
        self.gated_s = gated_s
        self.waiting = 0
        self._allowed = 0
        self._changed = asyncio.Condition()

    async def __call__(self, seconds: float) -> None:
        if seconds != self.gated_s:
            await asyncio.sleep(seconds)
            return
        async with self._changed:
            self.waiting += 1
            self._changed.notify_all()
            await self._changed.wait_for(lambda: self._allowed > 0)
            self._allowed -= 1

    async def open(self, times: int = 1) -> None:
        async with self._changed:
            self._allowed += times
            self._changed.notify_all()

    async def wait_until_waiting(self, count: int) -> None:
        async with asyncio.timeout(90):
            async with self._changed:
                await self._changed.wait_for(lambda: self.waiting >= count)


async def _greeted(rig: CallRig, call_sid: str) -> None:
    """Until the callee has heard the bot's first audio: the pipeline is running."""

    async def heard() -> bool:
        report = await rig.sim_report(call_sid)
        return any(stream["bot_audio_ms"] > 0 for stream in report["streams"])

    await _until_async(heard)


async def _until_async(condition: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(90):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.05)


async def test_held_capacity_is_renewed_while_the_call_lives_and_released_after(
    settings: Settings, fleet: Any
) -> None:
    interval_s = RENEW_TTL_S / 3  # the session renews every third of the shorter TTL
    sleep = GatedSleep(interval_s)
    deps = {"channel_lease_ttl_s": RENEW_TTL_S, "media_reservation_ttl_s": RENEW_TTL_S}
    async with call_rig(settings, fleet, sim=LINGERING, deps={**deps, "sleep": sleep}) as rig:
        verdict = await rig.dial("silent")
        await sleep.wait_until_waiting(1)
        attempt = rig.attempt(verdict)
        before = (rig.channel_expiry_ms(attempt), rig.reservation_expiry_ms(attempt))

        await sleep.open()  # one renewal interval passes
        await sleep.wait_until_waiting(2)  # renewed; waiting for the next interval
        after = (rig.channel_expiry_ms(attempt), rig.reservation_expiry_ms(attempt))
        now_ms = _redis_now_ms(rig)

        assert None not in before and None not in after
        # Both leases now run past anything the dispatcher granted (90 s).
        assert all(expiry > now_ms + 90_000 for expiry in after if expiry is not None)
        assert after != before

        # The call ends under us (the callee's side hangs up): the leases go back.
        await asyncio.to_thread(rig.provider.hang_up, verdict.call_sid or "")
        _, outcome, source, _ = await rig.worker_finalized()
        attempt = await rig.attempt_finalized(verdict)

    assert (outcome, source) == (Outcome.NO_RESPONSE.value, "customer_hung_up")
    assert attempt.outcome == Outcome.NO_RESPONSE
    assert rig.held_released(attempt)


async def test_draining_the_server_ends_a_live_call_as_worker_drained(
    settings: Settings, fleet: Any
) -> None:
    options = {"drain_timeout_s": 0.1}  # the call would linger; drain cuts it short
    async with call_rig(settings, fleet, sim=LINGERING, options=options) as rig:
        verdict = await rig.dial("silent")
        await _greeted(rig, verdict.call_sid or "")
        assert rig.server.live_calls == 1

        await rig.server.drain()  # what SIGTERM does

        assert rig.server.live_calls == 0
        _, outcome, source, record = await rig.worker_finalized()
        attempt = await rig.attempt_finalized(verdict)
        report = await rig.sim_call_final(verdict.call_sid or "")

    assert (outcome, source) == (Outcome.FAILED.value, "worker_drained")
    assert attempt.outcome == Outcome.FAILED  # retryable: the lead is called again
    assert summary_of(attempt.events)["ended_by"] == "worker_drained"
    assert record["transcript"][0]["speaker"] == "agent"  # the greeting was kept
    assert report["call"]["status"] == "completed"  # the callee was hung up, not left hanging
    assert rig.held_released(attempt)


async def test_a_call_reaching_the_length_cap_says_goodbye_and_ends(
    settings: Settings, fleet: Any
) -> None:
    max_call_s = 123.0
    sleep = GatedSleep(max_call_s)
    deps = {"max_call_s": max_call_s, "sleep": sleep}
    async with call_rig(settings, fleet, sim=LINGERING, deps=deps) as rig:
        verdict = await rig.dial("silent")
        await _greeted(rig, verdict.call_sid or "")
        await sleep.open()  # the cap's time has come

        _, outcome, source, record = await rig.worker_finalized()
        attempt = await rig.attempt_finalized(verdict)
        report = await rig.sim_call_final(verdict.call_sid or "")

    # Someone kept the line open for the whole cap without deciding: no response, not a
    # platform failure (which the retry policy would redial).
    assert (outcome, source) == (Outcome.NO_RESPONSE.value, "max_duration")
    assert (attempt.outcome, attempt.outcome_source) == (Outcome.NO_RESPONSE, "max_duration")
    assert summary_of(attempt.events)["ended_by"] == "max_duration"
    assert SessionEventKind.MAX_DURATION_REACHED in event_kinds(attempt.events)
    agent = [turn["text"] for turn in record["transcript"] if turn["speaker"] == "agent"]
    assert agent[-1] == CAP_GOODBYE
    [stream] = report["streams"]
    assert stream["end_reason"] == "api_hangup"  # we ended the call, gracefully
    assert rig.held_released(attempt)


async def test_a_provider_that_cannot_be_built_ends_the_call_as_an_error(
    settings: Settings, fleet: Any
) -> None:
    # A real STT without its key: the pipeline cannot be built.
    broken = ProviderOverrides(stt="deepgram", llm="scripted", tts="tone", tts_voice="tone")
    async with call_rig(settings, fleet, deps={"overrides": broken}) as rig:
        verdict = await rig.dial("confirm")
        _, outcome, source, record = await rig.worker_finalized()
        attempt = await rig.attempt_finalized(verdict)
        report = await rig.sim_call_final(verdict.call_sid or "")

    assert (outcome, source) == (Outcome.FAILED.value, "error")
    assert attempt.outcome == Outcome.FAILED
    assert summary_of(attempt.events)["ended_by"] == "error"
    assert record["transcript"] == []
    assert report["call"]["status"] == "completed"
    assert rig.held_released(attempt)


async def test_a_pipeline_cancelled_mid_call_ends_it_as_an_error(
    settings: Settings, fleet: Any
) -> None:
    sessions = Sessions()
    async with call_rig(settings, fleet, sim=LINGERING, runner=sessions.runner) as rig:
        verdict = await rig.dial("silent")
        await _greeted(rig, verdict.call_sid or "")
        [session] = sessions.started
        assert session.worker is not None
        # The `sim` STT hears the simulator's words, and no VAD runs: the audio goes unread.
        assert session.transport is not None and session.transport.caller_audio_ignored
        # What a processor does when the call cannot go on (a provider gone for good).
        cancel = CancelWorkerFrame(reason="provider failed for good")
        await session.worker.queue_frame(cancel, FrameDirection.UPSTREAM)

        _, outcome, source, _ = await rig.worker_finalized()
        attempt = await rig.attempt_finalized(verdict)
        report = await rig.sim_call_final(verdict.call_sid or "")
        await until(lambda: rig.server.live_calls == 0)

    assert (outcome, source) == (Outcome.FAILED.value, "error")
    assert summary_of(attempt.events)["ended_by"] == "error"
    assert report["call"]["status"] == "completed"
    assert len(rig.worker_tasks.finalizes) == 1
    assert rig.held_released(attempt)


def _redis_now_ms(rig: CallRig) -> int:
    seconds, micros = rig.fleet.redis.time()
    return int(seconds) * 1000 + int(micros) // 1000
