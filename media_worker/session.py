"""One admitted call, start to finish: load what the call needs, run its pipeline and flow,
keep the attempt's channel lease and media reservation alive while it lives, and on any end
save the record and send `callfleet.finalize_attempt` exactly once.

How the call ended decides the record's end cause (the outcome table is in `record.py`):

| the conversation decided an outcome (however it then ended) | CONVERSATION     |
| the stream ended under us with `stop` or a clean close     | CUSTOMER_HUNG_UP |
| the stream ended under us otherwise (lost, receive failed) | SOCKET_DROPPED   |
| the pipeline ended on its own (the flow's EndFrame)        | CONVERSATION     |
| an exception                                               | ERROR            |
| the session was cancelled (the server draining)            | WORKER_DRAINED   |

Not handled yet: `ConversationEnd.transfer_to` (the transfer after the pipeline ends) and
voicemail (`FlowPlan.voicemail_message`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis.asyncio as aioredis
import structlog
from pipecat.flows import FlowManager
from pipecat.frames.frames import EndFrame, Frame
from pipecat.pipeline.worker import PipelineWorker
from pipecat.workers.runner import WorkerRunner
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from websockets.asyncio.server import ServerConnection

from media_worker.admission import Admitted
from media_worker.flows import ConversationEnd, FlowPlan, build_flow
from media_worker.pipeline import CallPipeline, ProviderOverrides, build_call_pipeline
from media_worker.providers.factory import ProviderKeys
from media_worker.record import CallRecord, EndCause
from media_worker.store import CallContext, CallStore
from media_worker.transport import (
    HangUpOptions,
    StreamEnd,
    StreamEndReason,
    TwilioStreamTransport,
)
from shared.coordination import AsyncChannelLeases, AsyncMediaSlots
from shared.db.models import CallAttempt

log = structlog.get_logger(__name__)

FINALIZE_TASK = "callfleet.finalize_attempt"


class TaskSender(Protocol):
    """What sends `callfleet.finalize_attempt` (a Celery app in production)."""

    def send_task(self, name: str, args: Sequence[Any] | None = None) -> Any: ...


@dataclass(frozen=True)
class SessionDeps:
    """What every call session shares. `hang_up` None: ending the pipeline only closes the
    socket. `end_grace_s` bounds a graceful end (the goodbye, the flush) before cancelling."""

    store: CallStore
    sessions: sessionmaker[Session]
    redis: aioredis.Redis
    tasks: TaskSender
    keys: ProviderKeys = field(default_factory=ProviderKeys)
    overrides: ProviderOverrides | None = None
    hang_up: HangUpOptions | None = None
    channel_lease_ttl_s: float = 90
    media_reservation_ttl_s: float = 90
    end_grace_s: float = 20


@dataclass(frozen=True)
class _Held:
    number_id: str | None
    channel_token_id: str | None
    media_worker_id: str | None
    media_reservation_id: str | None


async def run_call(connection: ServerConnection, admitted: Admitted, *, deps: SessionDeps) -> None:
    """`MediaServer`'s call runner (bind `deps` with functools.partial)."""
    await CallSession(connection, admitted, deps).run()


class CallSession:
    def __init__(self, connection: ServerConnection, admitted: Admitted, deps: SessionDeps):
        self._connection = connection
        self._admitted = admitted
        self._deps = deps
        self._attempt_id = admitted.attempt_id
        self._worker: PipelineWorker | None = None
        self._deadline: asyncio.Task[None] | None = None
        self._finished_by: Frame | None = None
        self._conversation_end: ConversationEnd | None = None
        self._finalized = False
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def conversation_end(self) -> ConversationEnd | None:
        return self._conversation_end

    async def run(self) -> None:
        context = await self._deps.store.load(self._attempt_id)
        if context is None:
            # Admission checked the attempt exists; it vanished since (nothing to finalize).
            log.warning("call_context_missing")
            await self._connection.close()
            return
        record = CallRecord(context.definition.name)
        record.mark_answered()
        cause: EndCause | None = None
        renewal = asyncio.create_task(self._renew_held(), name="call-renewal")
        try:
            cause = await self._run_pipeline(context, record)
        except asyncio.CancelledError:
            cause = EndCause.WORKER_DRAINED
            await self._cancel_worker()
            raise
        except Exception:
            log.exception("call_session_failed")
            cause = EndCause.ERROR
            await self._cancel_worker()
        finally:
            renewal.cancel()
            for task in (self._deadline, *self._tasks):
                if task is not None:
                    task.cancel()
            record.end(cause or EndCause.ERROR)
            await asyncio.shield(self._finish(record))

    async def _run_pipeline(self, context: CallContext, record: CallRecord) -> EndCause:
        plan = build_flow(context.definition, context.payload, record=record, on_end=self._on_end)
        transport = TwilioStreamTransport(
            self._connection, self._admitted.start, hang_up=self._deps.hang_up
        )
        call = build_call_pipeline(
            transport,
            context,
            self._admitted.start.call_sid,
            self._deps.redis,
            self._deps.keys,
            record=record,
            overrides=self._deps.overrides,
        )
        worker = self._worker = call.worker

        @worker.event_handler("on_pipeline_started")  # type: ignore[untyped-decorator]
        async def _started(worker: PipelineWorker, frame: Frame) -> None:
            self._spawn(self._start_flow(call, plan))

        @worker.event_handler("on_pipeline_finished")  # type: ignore[untyped-decorator]
        async def _finished(worker: PipelineWorker, frame: Frame) -> None:
            self._finished_by = frame

        @transport.event_handler("on_client_disconnected")  # type: ignore[untyped-decorator]
        async def _gone(transport: TwilioStreamTransport, end: StreamEnd) -> None:
            # The transport ends the pipeline gracefully; bound how long that may take.
            log.info("media_stream_ended", reason=str(end.reason), close_code=end.close_code)
            self._arm_deadline()

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await runner.run()
        return self._cause(transport.stream_end, record)

    def _cause(self, end: StreamEnd | None, record: CallRecord) -> EndCause:
        # Once the conversation decided, the stream closing (our own REST hang-up makes the
        # carrier send `stop`) is the end of that conversation, not the customer leaving.
        if record.outcome is not None:
            return EndCause.CONVERSATION
        if end is not None:
            if end.reason in (StreamEndReason.STOP, StreamEndReason.CLOSED):
                return EndCause.CUSTOMER_HUNG_UP
            return EndCause.SOCKET_DROPPED
        if isinstance(self._finished_by, EndFrame):
            return EndCause.CONVERSATION
        return EndCause.ERROR

    async def _start_flow(self, call: CallPipeline, plan: FlowPlan) -> None:
        try:
            manager = FlowManager(
                worker=call.worker, llm=call.llm, context_aggregator=call.aggregators
            )
            await manager.initialize(plan.initial_node())
        except Exception:
            log.exception("flow_start_failed")
            await call.worker.cancel()

    async def _on_end(self, end: ConversationEnd) -> None:
        # Called inside a pipecat handler: must not raise or block.
        self._conversation_end = end
        log.info("conversation_decided", outcome=str(end.outcome))
        self._arm_deadline()

    def _arm_deadline(self) -> None:
        """From now on, the pipeline has `end_grace_s` to end on its own, then is cancelled."""
        if self._deadline is None:
            self._deadline = asyncio.create_task(self._cancel_after(self._deps.end_grace_s))

    async def _cancel_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        log.warning("call_end_timed_out", grace_s=seconds)
        await self._cancel_worker()

    async def _cancel_worker(self) -> None:
        if self._worker is None:
            return
        with contextlib.suppress(Exception, asyncio.TimeoutError):
            await asyncio.wait_for(self._worker.cancel(reason="call session ending"), timeout=5)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- the attempt's held capacity ------------------------------------------------------------

    async def _renew_held(self) -> None:
        """Keep the channel lease and the media reservation alive; finalization releases them."""
        deps = self._deps
        try:
            held = await asyncio.to_thread(self._held)
        except Exception:
            log.exception("held_lookup_failed")
            return
        if held is None:
            return
        leases, slots = AsyncChannelLeases(deps.redis), AsyncMediaSlots(deps.redis)
        interval_s = min(deps.channel_lease_ttl_s, deps.media_reservation_ttl_s) / 3
        while True:
            await asyncio.sleep(interval_s)
            try:
                if held.number_id and held.channel_token_id:
                    if not await leases.renew(
                        held.number_id, held.channel_token_id, lease_ttl_s=deps.channel_lease_ttl_s
                    ):
                        log.warning("channel_lease_lost")
                if held.media_worker_id and held.media_reservation_id:
                    if not await slots.renew(
                        held.media_worker_id,
                        held.media_reservation_id,
                        reservation_ttl_s=deps.media_reservation_ttl_s,
                    ):
                        log.warning("media_reservation_lost")
            except Exception as exc:  # Redis blips: keep trying while the call lives
                log.warning("held_renew_failed", error=repr(exc))

    def _held(self) -> _Held | None:
        with self._deps.sessions() as session:
            row = session.execute(
                select(
                    CallAttempt.number_id,
                    CallAttempt.channel_token_id,
                    CallAttempt.media_worker_id,
                    CallAttempt.media_reservation_id,
                ).where(CallAttempt.id == self._attempt_id)
            ).first()
        if row is None:
            return None
        number_id, token_id, worker_id, reservation_id = row
        return _Held(
            None if number_id is None else str(number_id), token_id, worker_id, reservation_id
        )

    # --- the end ----------------------------------------------------------------------------------

    async def _finish(self, record: CallRecord) -> None:
        with contextlib.suppress(Exception):
            await self._connection.close()
        saved = True
        try:
            await self._deps.store.save_record(
                self._attempt_id, record.to_transcript_json(), record.to_events_json()
            )
        except Exception:
            saved = False
            log.exception("save_record_failed")  # the finalize message carries it instead
        await self._finalize(record, events_saved=saved)

    async def _finalize(self, record: CallRecord, *, events_saved: bool) -> None:
        if self._finalized:
            return
        self._finalized = True
        # Finalization appends the events it is given; those already saved must not be
        # sent again. The transcript always travels: the merchant's webhook is built from it.
        finalize_record = record.to_finalize_record()
        if events_saved:
            finalize_record.pop("events", None)
        args = [
            str(self._attempt_id),
            record.outcome_for_attempt().value,
            record.decided_by.value,
            finalize_record,
        ]
        try:
            await asyncio.to_thread(self._deps.tasks.send_task, FINALIZE_TASK, args=args)
        except Exception:
            # The reconciler closes attempts whose finalize message was lost (`ended_at`).
            log.exception("finalize_send_failed")
            return
        log.info("call_finalize_sent", outcome=args[1], decided_by=args[2])
