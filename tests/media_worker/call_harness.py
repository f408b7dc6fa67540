"""Whole calls for media worker tests: the dispatcher dials the simulator with the Twilio
provider, the simulator plays a persona over a Media Stream to a real `MediaServer`, and the
call session runs the template's flow on offline providers. Finalization is real: each
`callfleet.finalize_attempt` sent is applied to PostgreSQL and Redis as the Celery task does.

With `api=True` the simulator's signed status callbacks reach a real API server too, so calls
that never reach the media worker (busy, no answer) are finalized by the dispatcher's code.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from redis.asyncio import Redis

from dispatcher.admission.pipeline import Verdict
from dispatcher.api import create_app
from dispatcher.finalization import finalize_attempt
from dispatcher.providers import TwilioProvider
from dispatcher.tasks.finalize import release_held
from media_worker.options import MediaWorkerOptions
from media_worker.pipeline import ProviderOverrides
from media_worker.server import CallRunner, MediaServer
from media_worker.session import FINALIZE_TASK, SessionDeps, run_call
from media_worker.store import CallStore
from media_worker.transport import HangUpOptions
from shared import redis_keys
from shared.db.models import CallAttempt
from shared.db.session import make_async_engine, transaction
from shared.enums import Outcome
from shared.settings import Settings
from simulator.server import ThreadedSimulator
from simulator.settings import SimulatorSettings
from tests.integration.fleet import MEDIA_WORKER, Fleet, payload

WAIT_S = 90.0
"""An upper bound on waiting for a call to settle: a hung call fails the test, never a slow one."""
PHONE = "+919812345678"
POLL_S = 0.05


async def until(condition: Callable[[], bool]) -> None:
    """Wait for `condition` to hold, at most `WAIT_S` (for state no event announces)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            if condition():
                return
            await asyncio.sleep(POLL_S)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Sent:
    name: str
    args: list[Any]
    countdown: float | None


class FinalizingSender:
    """Stands in for the Celery app: keeps every task sent, and applies
    `callfleet.finalize_attempt` (finalization, then releasing what the attempt held) and
    `callfleet.hang_up` as the fleet would. Countdown tasks (the carrier's backup finalize)
    are only kept: the conversation reports first, and backups are tested elsewhere."""

    def __init__(self, fleet: Fleet, provider: TwilioProvider) -> None:
        self.sent: list[Sent] = []
        self._fleet = fleet
        self._provider = provider
        self._lock = threading.Lock()
        self._loop = asyncio.get_running_loop()
        self.finalized = asyncio.Event()

    @property
    def finalizes(self) -> list[list[Any]]:
        with self._lock:
            return [s.args for s in self.sent if s.name == FINALIZE_TASK and s.countdown is None]

    def send_task(
        self,
        name: str,
        args: Sequence[Any] | None = None,
        countdown: float | None = None,
        **options: Any,
    ) -> Any:
        with self._lock:
            self.sent.append(Sent(name, list(args or []), countdown))
        if countdown is not None:
            return None
        if name == FINALIZE_TASK:
            self._finalize(*list(args or []))
            self._loop.call_soon_threadsafe(self.finalized.set)
        elif name == "callfleet.hang_up":
            self._provider.hang_up(str((args or [""])[0]))
        return None

    def _finalize(
        self, attempt_id: str, outcome: str, source: str, record: dict[str, Any] | None = None
    ) -> None:
        record = record or {}
        with transaction(self._fleet.sessions) as session:
            result = finalize_attempt(
                session,
                uuid.UUID(attempt_id),
                Outcome(outcome),
                source=source,
                now=datetime.now(UTC),
                transcript=record.get("transcript"),
                events=record.get("events"),
            )
        release_held(self._fleet.channels, self._fleet.slots, result)


@dataclass
class CallRig:
    fleet: Fleet
    simulator: ThreadedSimulator
    server: MediaServer
    provider: TwilioProvider
    worker_tasks: FinalizingSender
    carrier_tasks: FinalizingSender
    admission_changes: dict[str, Any] = field(default_factory=dict)

    async def dial(self, persona: str, *, phone: str = PHONE, **admission: Any) -> Verdict:
        f = self.fleet
        lead_id = f.add_lead(phone, payload={**payload(), "persona": persona})
        f.queue()
        changes = {**self.admission_changes, **admission}
        verdict = await asyncio.to_thread(
            f.dispatch, lead_id, f.admission(provider=self.provider, **changes)
        )
        assert verdict.action == "dialed" and verdict.call_sid, verdict
        return verdict

    async def worker_finalized(self) -> list[Any]:
        """The media worker's one finalize message, once the session is over."""
        async with asyncio.timeout(WAIT_S):
            await self.worker_tasks.finalized.wait()
        await until(lambda: self.server.live_calls == 0)
        [args] = self.worker_tasks.finalizes
        return args

    async def attempt_finalized(self, verdict: Verdict) -> CallAttempt:
        """The attempt once finalized, by whichever sender got there."""
        async with asyncio.timeout(WAIT_S):
            while True:
                attempt = await asyncio.to_thread(self.attempt, verdict)
                if attempt.finalized_at is not None:
                    return attempt
                waits = [
                    asyncio.ensure_future(sender.finalized.wait())
                    for sender in (self.worker_tasks, self.carrier_tasks)
                ]
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for wait in waits:
                        wait.cancel()
                self.worker_tasks.finalized.clear()
                self.carrier_tasks.finalized.clear()

    def attempt(self, verdict: Verdict) -> CallAttempt:
        with self.fleet.sessions() as session:
            attempt = session.get(CallAttempt, verdict.attempt_id)
            assert attempt is not None
            return attempt

    async def sim_report(self, call_sid: str) -> dict[str, Any]:
        """What the simulated callee heard, said and was told (`GET /_sim/calls/{sid}`)."""
        async with httpx.AsyncClient(base_url=self.simulator.base_url) as client:
            response = await client.get(f"/_sim/calls/{call_sid}")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    async def sim_call_final(self, call_sid: str) -> dict[str, Any]:
        async with asyncio.timeout(WAIT_S):
            while True:
                report = await self.sim_report(call_sid)
                if report["final"]:
                    return report
                await asyncio.sleep(POLL_S)

    def held_released(self, attempt: CallAttempt) -> bool:
        """Neither the attempt's channel lease nor its media reservation is still held."""
        return not self.channel_held(attempt) and not self.reservation_held(attempt)

    def channel_expiry_ms(self, attempt: CallAttempt) -> float | None:
        key = redis_keys.channel_leases(str(attempt.number_id))
        return self.fleet.redis.zscore(key, attempt.channel_token_id or "")

    def reservation_expiry_ms(self, attempt: CallAttempt) -> float | None:
        key = redis_keys.media_reservations(attempt.media_worker_id or "")
        return self.fleet.redis.zscore(key, attempt.media_reservation_id or "")

    def channel_held(self, attempt: CallAttempt) -> bool:
        return self.channel_expiry_ms(attempt) is not None

    def reservation_held(self, attempt: CallAttempt) -> bool:
        return self.reservation_expiry_ms(attempt) is not None


RunnerFactory = Callable[[SessionDeps], CallRunner]


def default_runner(deps: SessionDeps) -> CallRunner:
    return functools.partial(run_call, deps=deps)


@asynccontextmanager
async def call_rig(
    settings: Settings,
    fleet_factory: Callable[..., Fleet],
    *,
    api: bool = False,
    document: dict[str, Any] | None = None,
    sim: dict[str, Any] | None = None,
    deps: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    admission: dict[str, Any] | None = None,
    runner: RunnerFactory = default_runner,
) -> AsyncIterator[CallRig]:
    """A simulator, a media server and a fleet wired together (see the module docstring).

    `sim`, `deps`, `options` and `admission` change `SimulatorSettings`, `SessionDeps`,
    `MediaWorkerOptions` and the dispatcher's `AdmissionOptions`; `runner` builds the
    server's call runner from the session deps.
    """
    sim_changes = {"ring_s": 0.05, "linger_s": 5.0, **(sim or {})}
    sim_settings = SimulatorSettings(port=0, redis_url=settings.redis_url, **sim_changes)
    simulator = ThreadedSimulator(sim_settings)
    # Its exit runs a loop of its own, which cannot happen on this (running) one.
    await asyncio.to_thread(simulator.__enter__)
    try:
        async with _wired(
            settings,
            fleet_factory,
            simulator,
            sim_settings,
            api=api,
            document=document,
            deps=deps,
            options=options,
            admission=admission,
            runner=runner,
        ) as rig:
            yield rig
    finally:
        await asyncio.to_thread(simulator.__exit__, None, None, None)


@asynccontextmanager
async def _wired(
    settings: Settings,
    fleet_factory: Callable[..., Fleet],
    simulator: ThreadedSimulator,
    sim_settings: SimulatorSettings,
    *,
    api: bool,
    document: dict[str, Any] | None,
    deps: dict[str, Any] | None,
    options: dict[str, Any] | None,
    admission: dict[str, Any] | None,
    runner: RunnerFactory,
) -> AsyncIterator[CallRig]:
    carrier_settings = settings.model_copy(
        update={
            "twilio_api_base_url": simulator.base_url,
            "public_base_url": f"http://127.0.0.1:{free_port()}",
        }
    )
    f = fleet_factory(document=document) if document else fleet_factory()
    f.settings = carrier_settings
    f.slots.withdraw(MEDIA_WORKER)  # dispatch must reserve the real media worker
    provider = TwilioProvider(
        sim_settings.account_sid, sim_settings.token, api_base_url=simulator.base_url
    )
    worker_tasks = FinalizingSender(f, provider)
    carrier_tasks = FinalizingSender(f, provider)
    client = Redis.from_url(settings.redis_url)
    # The worker's own read path: its start's reads on the event loop (see `store`).
    read_engine = make_async_engine(settings, pool_size=2, pre_ping=False)
    store = CallStore(f.sessions, read_engine=read_engine)
    hang_up = HangUpOptions(auth_token=sim_settings.auth_token, api_base_url=simulator.base_url)
    deps_changes = {
        "overrides": ProviderOverrides.offline(),
        "hang_up": hang_up,
        "end_grace_s": 10,
        **(deps or {}),
    }
    session_deps = SessionDeps(store=store, redis=client, tasks=worker_tasks, **deps_changes)
    media_options = replace(
        MediaWorkerOptions.from_settings(settings, port=free_port()),
        worker_id=f"mw-{uuid.uuid4().hex[:8]}",
        **(options or {}),
    )
    server = MediaServer(
        media_options,
        redis=client,
        recorded_sid=store.recorded_sid,
        run_call=runner(session_deps),
    )
    api_server = _start_api(carrier_settings, carrier_tasks) if api else None
    try:
        if api_server is not None:
            await until(lambda: bool(api_server[0].started))
        await server.start()
        yield CallRig(
            f,
            simulator,
            server,
            provider,
            worker_tasks,
            carrier_tasks,
            dict(admission or {}),
        )
    finally:
        await server.drain()
        await client.aclose()
        await read_engine.dispose()
        if api_server is not None:
            api_server[0].should_exit = True
            await asyncio.to_thread(api_server[1].join, 10)
        provider.close()


def _start_api(
    settings: Settings, tasks: FinalizingSender
) -> tuple[uvicorn.Server, threading.Thread]:
    port = int(settings.public_base_url.rsplit(":", 1)[1])
    config = uvicorn.Config(
        create_app(settings, tasks=tasks),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    return server, thread


def summary_of(events: list[Any]) -> dict[str, Any]:
    """The `call_summary` event's details (exactly one per call record)."""
    [summary] = [e for e in events if isinstance(e, dict) and e.get("kind") == "call_summary"]
    details: dict[str, Any] = summary["details"]
    return details


def event_kinds(events: list[Any]) -> list[str]:
    return [str(e.get("kind")) for e in events if isinstance(e, dict) and "kind" in e]
