"""A whole call through the media worker: the dispatcher dials the simulator with the Twilio
provider, the simulator opens the Media Stream to a real MediaServer and plays the `confirm`
persona, and the call session runs the COD flow on offline providers (sim STT, scripted LLM,
tone TTS) and sends `callfleet.finalize_attempt` once."""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest
from redis.asyncio import Redis

from dispatcher.providers import TwilioProvider
from media_worker.options import MediaWorkerOptions
from media_worker.pipeline import ProviderOverrides
from media_worker.server import MediaServer
from media_worker.session import FINALIZE_TASK, SessionDeps, run_call
from media_worker.store import CallStore
from media_worker.transport import HangUpOptions
from shared.enums import Outcome
from shared.settings import Settings
from simulator.server import ThreadedSimulator
from simulator.settings import SimulatorSettings
from tests.integration.fleet import MEDIA_WORKER, Fleet, payload

WAIT_S = 60.0


class RecordingSender:
    """Stands in for the Celery app: keeps what would be sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[Any]]] = []
        self.options: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._loop = asyncio.get_running_loop()
        self.arrived = asyncio.Event()

    def send_task(self, name: str, args: Sequence[Any] | None = None, **options: Any) -> Any:
        with self._lock:
            self.sent.append((name, list(args or [])))
            self.options.append(options)
        self._loop.call_soon_threadsafe(self.arrived.set)
        return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def simulator(settings: Settings) -> Iterator[ThreadedSimulator]:
    sim_settings = SimulatorSettings(port=0, ring_s=0.05, redis_url=settings.redis_url)
    with ThreadedSimulator(sim_settings) as sim:
        yield sim


@pytest.fixture
async def media(
    settings: Settings, sessions: Any, redis_client: Any, simulator: ThreadedSimulator
) -> AsyncIterator[tuple[MediaServer, RecordingSender]]:
    options = replace(
        MediaWorkerOptions.from_settings(settings, port=free_port()),
        worker_id="mw-full-call",
    )
    client = Redis.from_url(settings.redis_url)
    sender = RecordingSender()
    store = CallStore(sessions)
    deps = SessionDeps(
        store=store,
        redis=client,
        tasks=sender,
        overrides=ProviderOverrides.offline(),
        hang_up=HangUpOptions(
            auth_token=SimulatorSettings().auth_token, api_base_url=simulator.base_url
        ),
        end_grace_s=10,
    )
    server = MediaServer(
        options,
        redis=client,
        recorded_sid=store.recorded_sid,
        run_call=functools.partial(run_call, deps=deps),
    )
    await server.start()
    yield server, sender
    await server.drain()
    await client.aclose()


async def test_a_confirm_call_is_finalized_once_as_confirmed(
    fleet: Any, media: tuple[MediaServer, RecordingSender], simulator: ThreadedSimulator
) -> None:
    server, sender = media
    f: Fleet = fleet()
    f.slots.withdraw(MEDIA_WORKER)  # dispatch must reserve the real media worker
    sim = SimulatorSettings()
    provider = TwilioProvider(sim.account_sid, sim.token, api_base_url=simulator.base_url)
    lead_id = f.add_lead("+919812345678", payload={**payload(), "persona": "confirm"})
    f.queue()
    try:
        verdict = await asyncio.to_thread(f.dispatch, lead_id, f.admission(provider=provider))
        assert verdict.call_sid, verdict

        async with asyncio.timeout(WAIT_S):
            await sender.arrived.wait()
    finally:
        provider.close()

    [(name, args)] = sender.sent
    attempt_id, outcome, source, record = args
    assert name == FINALIZE_TASK
    assert sender.options == [{"ignore_result": True}]  # no result subscription
    assert attempt_id == str(verdict.attempt_id)
    assert outcome == Outcome.CONFIRMED.value
    assert source == "conversation"
    speakers = {turn["speaker"] for turn in record["transcript"]}
    assert speakers == {"agent", "customer"}, record["transcript"]
    # The call's events were saved on the attempt, so the message does not repeat them.
    assert "events" not in record
    [attempt] = f.attempts(lead_id)
    assert attempt.transcript == record["transcript"]
    [summary] = [e for e in attempt.events if e.get("kind") == "call_summary"]
    assert summary["details"]["ended_by"] == "conversation"
