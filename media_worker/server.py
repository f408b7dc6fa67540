"""The media worker's websocket server: health check, per-process call slots, admission at
the socket, one call runner per admitted stream, and a bounded drain on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator
from http import HTTPStatus

import structlog
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.asyncio import Redis
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from media_worker.admission import Admitted, RecordedSid, Refused, admit
from media_worker.heartbeat import Heartbeat
from media_worker.options import MediaWorkerOptions
from shared.call_tokens import AsyncCallTokenRedeemer
from shared.coordination import AsyncMediaSlots

log = structlog.get_logger(__name__)

CallRunner = Callable[[ServerConnection, Admitted], Awaitable[None]]
STREAM_PATH = "/stream"


class MediaServer:
    def __init__(
        self,
        options: MediaWorkerOptions,
        *,
        redis: Redis,
        recorded_sid: RecordedSid,
        run_call: CallRunner,
    ) -> None:
        self.options = options
        self._redis = redis
        self._recorded_sid = recorded_sid
        self._run_call = run_call
        self._redeemer = AsyncCallTokenRedeemer(redis)
        self._free = asyncio.Semaphore(options.slots)
        self._live: set[asyncio.Task[None]] = set()
        self._draining = False
        self._server: Server | None = None
        self.heartbeat = Heartbeat(
            AsyncMediaSlots(redis),
            worker_id=options.worker_id,
            stream_url=options.stream_url,
            capacity=options.slots,
            interval_s=options.heartbeat_interval_s,
            ttl_s=options.heartbeat_ttl_s,
        )

    @property
    def live_calls(self) -> int:
        return len(self._live)

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/healthz":
            body = {
                "status": "draining" if self._draining else "ok",
                "worker_id": self.options.worker_id,
                "live_calls": self.live_calls,
                "slots": self.options.slots,
            }
            return connection.respond(HTTPStatus.OK, json.dumps(body) + "\n")
        if request.path == "/metrics":
            return connection.respond(HTTPStatus.OK, self._metrics())
        if request.path != STREAM_PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        if self._draining:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "draining\n")
        return None

    def _metrics(self) -> str:
        """This process's calls in Prometheus text format (the fleet's totals are on the
        API's `/metrics`)."""
        labels = ["worker_id"]
        families = [
            ("callfleet_media_live_calls", "Calls this media worker is serving.", self.live_calls),
            ("callfleet_media_slots", "Call slots this media worker has.", self.options.slots),
            (
                "callfleet_media_free_slots_local",
                "Call slots free on this worker (0 while draining).",
                0 if self._draining else max(self.options.slots - self.live_calls, 0),
            ),
        ]
        registry = CollectorRegistry(auto_describe=False)
        gauges: list[Metric] = []
        for name, documentation, value in families:
            gauge = GaugeMetricFamily(name, documentation, labels=labels)
            gauge.add_metric([self.options.worker_id], value)
            gauges.append(gauge)
        registry.register(_Snapshot(gauges))
        return generate_latest(registry).decode()

    async def _handle(self, connection: ServerConnection) -> None:
        if self._free.locked():
            await connection.close(CloseCode.TRY_AGAIN_LATER, "no free call slot")
            return
        async with self._free:
            try:
                admitted = await admit(
                    connection,
                    secret=self.options.call_token_secret,
                    max_age_s=self.options.call_token_max_age_s,
                    handshake_timeout_s=self.options.handshake_timeout_s,
                    recorded_sid=self._recorded_sid,
                    redeemer=self._redeemer,
                )
            except Refused as refused:
                log.info("stream_refused", reason=refused.reason)
                await connection.close(CloseCode.POLICY_VIOLATION, refused.reason)
                return
            await self._run_admitted(connection, admitted)

    async def _run_admitted(self, connection: ServerConnection, admitted: Admitted) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._live.add(task)
        structlog.contextvars.bind_contextvars(
            attempt_id=admitted.claims.attempt_id,
            lead_id=admitted.claims.lead_id,
            call_sid=admitted.start.call_sid,
        )
        try:
            await self._run_call(connection, admitted)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The connection boundary: the runner records and finalizes; this only logs.
            log.exception("call_failed")
        finally:
            self._live.discard(task)
            structlog.contextvars.unbind_contextvars("attempt_id", "lead_id", "call_sid")

    async def start(self) -> None:
        self._server = await serve(
            self._handle, self.options.host, self.options.port, process_request=self._http
        )
        await self.heartbeat.start()
        log.info("media_worker_started", worker_id=self.options.worker_id, slots=self.options.slots)

    @property
    def port(self) -> int:
        assert self._server is not None
        sockets = list(self._server.sockets)
        return int(sockets[0].getsockname()[1])

    async def drain(self) -> None:
        """Take no new calls, let live ones finish within the drain timeout, then stop."""
        self._draining = True
        await self.heartbeat.drain()
        live = set(self._live)
        if live:
            log.info("draining", live_calls=len(live))
            _, pending = await asyncio.wait(live, timeout=self.options.drain_timeout_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        await self.stop()

    async def stop(self) -> None:
        await self.heartbeat.stop()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), timeout=10)


class _Snapshot(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)
