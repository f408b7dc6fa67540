"""`SimulatorServer`: the HTTP app, one task per call, and the clients they share. An async
context manager (tests, `python -m simulator`); `ThreadedSimulator` runs one for sync code."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from collections import deque
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp
import structlog
from aiohttp import web

from simulator.audio import SpeechSynth
from simulator.callbacks import CallbackSender
from simulator.calls import Call, CallRegistry, CallRequest, new_sid
from simulator.faults import Faults, twilio_error
from simulator.lifecycle import CallEnv, run_call
from simulator.personas import PERSONA_PARAMETER, PERSONAS, check_names, choose_persona
from simulator.report import CallReport
from simulator.rest import build_app
from simulator.settings import SimulatorSettings
from simulator.sidechannel import TranscriptPublisher, make_publisher
from simulator.twiml import first_stream

log = structlog.get_logger(__name__)
_T = TypeVar("_T")


class SimulatorServer:
    """Listens on `settings.host:settings.port` (0: a free port, see `port` once started)."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self.personas = {**PERSONAS, **settings.personas}
        check_names(self.personas, [name for _, name in settings.number_rules])
        check_names(self.personas, [name for name, _ in settings.persona_mix])
        self.faults = Faults(
            fail_next_creates=deque(twilio_error(status) for status in settings.fail_next_creates),
            duplicate_callbacks=settings.duplicate_callbacks,
            reorder_callbacks=settings.reorder_callbacks,
        )
        self.calls = CallRegistry()
        self.port = settings.port
        self._rng = random.Random(settings.seed)
        self._tasks: set[asyncio.Task[None]] = set()
        self._env: CallEnv | None = None
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._publisher: TranscriptPublisher | None = None

    @property
    def base_url(self) -> str:
        """What the twilio SDK's `client.api.base_url` must be set to."""
        return f"http://{self.settings.host}:{self.port}"

    async def start(self) -> None:
        settings = self.settings
        # A fresh connection per request, as Twilio's callbacks come: a pooled keep-alive
        # connection that the receiving server is closing at that instant resets, and the
        # callback would be lost.
        connector = aiohttp.TCPConnector(limit=500, force_close=True)
        self._http = aiohttp.ClientSession(connector=connector)
        self._publisher = make_publisher(settings.redis_url)
        self._env = CallEnv(
            settings=settings,
            callbacks=CallbackSender(
                self._http, settings.token, self.faults, settings.callback_timeout_s
            ),
            synth=SpeechSynth(settings.espeak_binary, settings.speech_ms_per_char),
            publisher=self._publisher,
            http=self._http,
            personas=self.personas,
        )
        self._runner = web.AppRunner(build_app(self), access_log=None)
        await self._runner.setup()
        sock = socket.create_server((settings.host, settings.port), backlog=1024)
        await web.SockSite(self._runner, sock).start()
        self.port = sock.getsockname()[1]
        log.info(
            "simulator_started",
            url=self.base_url,
            instant=settings.instant,
            speech=self._env.synth.engine,
            redis=bool(settings.redis_url),
        )

    async def stop(self) -> None:
        """Abandon live calls (no more callbacks) and close everything."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._env is not None:
            await self._env.callbacks.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()
        if self._publisher is not None:
            await self._publisher.close()
        self._env = self._runner = self._http = self._publisher = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def place(self, request: CallRequest) -> Call:
        """Register a validated call and start its task (the REST create handler's job)."""
        if self._env is None:
            raise RuntimeError("the simulator is not started")
        stream = first_stream(request.verbs) if request.verbs else None
        persona = choose_persona(
            requested=stream.parameters.get(PERSONA_PARAMETER) if stream else None,
            to=request.to,
            table=self.personas,
            number_rules=self.settings.number_rules,
            mix=self.settings.persona_mix,
            rng=self._rng,
        )
        call = Call(
            sid=new_sid("CA"),
            account_sid=self.settings.account_sid,
            request=request,
            persona=persona,
            report=CallReport(persona=persona.name),
        )
        self.calls.add(call)
        task = asyncio.create_task(run_call(call, self._env), name=f"call-{call.sid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return call


class ThreadedSimulator:
    """A `SimulatorServer` on its own event loop in a background thread, for sync tests:
    `with ThreadedSimulator(settings) as sim: Client(...).api.base_url = sim.base_url`."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.server = SimulatorServer(settings)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="simulator", daemon=True
        )

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def run(self, coroutine: Coroutine[Any, Any, _T], timeout_s: float = 30.0) -> _T:
        """Run a coroutine on the simulator's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    def __enter__(self) -> Self:
        self._thread.start()
        self.run(self.server.start())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.run(self.server.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()
