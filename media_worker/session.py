"""One admitted call, start to finish: load what the call needs, run its pipeline and flow,
keep the attempt's channel lease and media reservation alive while it lives, and on any end
save the record and send `callfleet.finalize_attempt` exactly once.

How the call ended decides the record's end cause (the outcome table is in `record.py`):

| the conversation decided an outcome (however it then ended) | CONVERSATION     |
| the call ran into `max_call_s` (see below)                  | MAX_DURATION     |
| the stream ended under us with `stop` or a clean close     | CUSTOMER_HUNG_UP |
| the stream ended under us otherwise (lost, receive failed) | SOCKET_DROPPED   |
| the pipeline ended on its own (the flow's EndFrame)        | CONVERSATION     |
| an exception, or the pipeline cancelled (a fatal error)    | ERROR            |
| the session was cancelled (the server draining)            | WORKER_DRAINED   |

Voicemail: with `machine_detection`, the session asks the carrier for the call's `AnsweredBy`
(Twilio runs the TwiML, hence our stream, only once detection is done). On a machine the
outcome is `VOICEMAIL` and the template's policy runs instead of the conversation: `hang_up`
ends the call at once; `leave_message` speaks the rendered message, then ends the call.

Transfer: a flow ending with `ConversationEnd.transfer_to` makes the pipeline's end hand the
call to that number (a REST update with `<Dial>` TwiML) instead of hanging up; the record gets
`transfer_completed` or `transfer_failed` (then the call is hung up).

Length cap: `max_call_s` after the start, a call the conversation has not ended says a short
goodbye and ends gracefully (`max_duration_reached` event); its cause is MAX_DURATION (the
record's outcome table says what the attempt gets).

Agent routing: an orchestrator's flow is built with its agents (`CallContext.agents`); when one
takes the call over, routing calls `_on_voice_change` inside the flow's own order, and the
pipeline switches to that agent's voice (`CallPipeline.speak_as`, every voice having been built
at the call's start). A hand-off carrying a summary asks the call's LLM for it
(`llm_summarizer`, bounded by routing's own timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import redis.asyncio as aioredis
import structlog
from pipecat.flows import FlowManager
from pipecat.frames.frames import EndFrame, Frame, TTSSpeakFrame
from pipecat.pipeline.worker import PipelineWorker
from pipecat.workers.runner import WorkerRunner
from websockets.asyncio.server import ServerConnection

from media_worker.admission import Admitted
from media_worker.flows import ConversationEnd, FlowPlan, build_flow
from media_worker.flows.routing import VoiceChange, llm_summarizer
from media_worker.held import Held, Sleep, keep_held
from media_worker.pipeline import CallPipeline, ProviderOverrides, build_call_pipeline
from media_worker.providers.factory import ProviderKeys
from media_worker.record import CallRecord, EndCause
from media_worker.store import CallContext, CallStore
from media_worker.transport import (
    CallControl,
    CallControlError,
    HangUpOptions,
    StreamEnd,
    StreamEndReason,
    TwilioStreamTransport,
    call_control_for,
    is_machine,
)
from media_worker.tts_health import TTSHealthPolicy
from shared.enums import Outcome

log = structlog.get_logger(__name__)

FINALIZE_TASK = "callfleet.finalize_attempt"
DEFAULT_MAX_CALL_S = 900.0
"""The default cap on one call's length (`CALLFLEET_MEDIA_MAX_CALL_S`): 15 minutes."""
CAP_GOODBYE = "I am sorry, I have to end this call now. Thank you, goodbye."


class SessionEventKind(StrEnum):
    """The events the session writes on the call's record."""

    ANSWERED_BY_MACHINE = "answered_by_machine"
    TRANSFER_COMPLETED = "transfer_completed"
    TRANSFER_FAILED = "transfer_failed"
    MAX_DURATION_REACHED = "max_duration_reached"


class TaskSender(Protocol):
    """What sends `callfleet.finalize_attempt` (a Celery app in production), with
    `ignore_result=True`: see `dispatcher.intake.announce.TaskSender`."""

    def send_task(self, name: str, args: Sequence[Any] | None = None, **options: Any) -> Any: ...


@dataclass(frozen=True)
class SessionDeps:
    """What every call session shares. `hang_up` None: ending the pipeline only closes the
    socket, and there is no REST access to the call (no transfer, no machine detection).
    `end_grace_s` bounds a graceful end (the goodbye, the flush) before cancelling;
    `max_call_s` caps a call's length; `machine_detection` asks the carrier for `AnsweredBy`
    (set it as the dispatcher's dials do); `tts_policy` is the TTS health policy (None: its
    defaults); `sleep` is every wait the session makes (tests pass one they control)."""

    store: CallStore
    redis: aioredis.Redis
    tasks: TaskSender
    keys: ProviderKeys = field(default_factory=ProviderKeys)
    overrides: ProviderOverrides | None = None
    hang_up: HangUpOptions | None = None
    channel_lease_ttl_s: float = 90
    media_reservation_ttl_s: float = 90
    end_grace_s: float = 20
    max_call_s: float = DEFAULT_MAX_CALL_S
    machine_detection: bool = False
    tts_policy: TTSHealthPolicy | None = None
    sleep: Sleep = asyncio.sleep


async def run_call(connection: ServerConnection, admitted: Admitted, *, deps: SessionDeps) -> None:
    """`MediaServer`'s call runner (bind `deps` with functools.partial)."""
    await CallSession(connection, admitted, deps).run()


class CallSession:
    def __init__(self, connection: ServerConnection, admitted: Admitted, deps: SessionDeps):
        self._connection = connection
        self._admitted = admitted
        self._deps = deps
        self._attempt_id = admitted.attempt_id
        self._control: CallControl | None = (
            None if deps.hang_up is None else call_control_for(admitted.start, deps.hang_up)
        )
        self._transport: TwilioStreamTransport | None = None
        self._worker: PipelineWorker | None = None
        self._call: CallPipeline | None = None
        self._deadline: asyncio.Task[None] | None = None
        self._finished_by: Frame | None = None
        self._conversation_end: ConversationEnd | None = None
        self._capped = False
        self._finalized = False
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def conversation_end(self) -> ConversationEnd | None:
        return self._conversation_end

    @property
    def transport(self) -> TwilioStreamTransport | None:
        """The call's transport once built (None before, or for a voicemail hang-up)."""
        return self._transport

    @property
    def worker(self) -> PipelineWorker | None:
        """The call's pipeline worker once built (None before, or for a voicemail hang-up)."""
        return self._worker

    async def run(self) -> None:
        # Asked while the call's context loads: the answer is ready when the flow needs it.
        answered_by = asyncio.create_task(self._answered_by(), name="call-answered-by")
        try:
            context = await self._deps.store.load(self._attempt_id)
        except BaseException:
            answered_by.cancel()
            raise
        if context is None:
            # Admission checked the attempt exists; it vanished since (nothing to finalize).
            log.warning("call_context_missing")
            answered_by.cancel()
            await self._connection.close()
            return
        record = CallRecord(context.definition.name)
        record.mark_answered()
        cause: EndCause | None = None
        background = (
            asyncio.create_task(self._keep_held(context.held), name="call-renewal"),
            asyncio.create_task(self._cap(record), name="call-cap"),
            answered_by,
        )
        try:
            cause = await self._run(context, record, answered_by)
        except asyncio.CancelledError:
            cause = EndCause.WORKER_DRAINED
            await self._cancel_worker()
            raise
        except Exception:
            log.exception("call_session_failed")
            cause = EndCause.ERROR
            await self._cancel_worker()
        finally:
            for task in (*background, self._deadline, *self._tasks):
                if task is not None:
                    task.cancel()
            if self._call is not None:
                self._call.tts_health.drop_start_choice()
            self._note_transfer(record)
            record.end(cause or EndCause.ERROR)
            await asyncio.shield(self._finish(record))

    async def _run(
        self, context: CallContext, record: CallRecord, answered_by: asyncio.Task[str | None]
    ) -> EndCause:
        plan = build_flow(
            context.definition,
            context.payload,
            record=record,
            on_end=self._on_end,
            agents=context.agents,
            on_voice_change=self._on_voice_change,
            summarize=self._summarize,
        )
        machine = await answered_by
        if not is_machine(machine):
            return await self._run_pipeline(context, record, plan, voicemail=None)
        record.add_event(SessionEventKind.ANSWERED_BY_MACHINE, {"answered_by": machine})
        record.decide_outcome(Outcome.VOICEMAIL)
        message = plan.voicemail_message
        log.info("answered_by_machine", answered_by=machine, leave_message=message is not None)
        if message is None:
            await self._hang_up_now()
            return EndCause.CONVERSATION
        return await self._run_pipeline(context, record, plan, voicemail=message)

    async def _run_pipeline(
        self, context: CallContext, record: CallRecord, plan: FlowPlan, *, voicemail: str | None
    ) -> EndCause:
        transport = self._transport = TwilioStreamTransport(
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
            tts_policy=self._deps.tts_policy,
        )
        self._call = call
        # The fleet's TTS health is read while the pipeline starts, not when the StartFrame
        # reaches the voices.
        call.tts_health.prepare_start()
        if not call.hears_caller:
            transport.ignore_caller_audio()
        worker = self._worker = call.worker

        @worker.event_handler("on_pipeline_started")  # type: ignore[untyped-decorator]
        async def _started(worker: PipelineWorker, frame: Frame) -> None:
            if voicemail is None:
                self._spawn(self._start_flow(call, plan))
            else:
                # No conversation with a machine: the message, then the end (and the hang-up).
                await worker.queue_frames(
                    [
                        TTSSpeakFrame(voicemail, append_to_context=False),
                        EndFrame(reason="voicemail message left"),
                    ]
                )

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
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            # The runner absorbs a cancellation (it cancels the worker and returns); the
            # session's own cancellation (the server draining) must still end it as such.
            raise asyncio.CancelledError
        return self._cause(transport.stream_end, record)

    def _cause(self, end: StreamEnd | None, record: CallRecord) -> EndCause:
        # Once the conversation decided, the stream closing (our own REST hang-up makes the
        # carrier send `stop`) is the end of that conversation, not the customer leaving.
        if record.outcome is not None:
            return EndCause.CONVERSATION
        if self._capped:
            return EndCause.MAX_DURATION
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
        if end.transfer_to is not None and self._transport is not None:
            try:
                self._transport.transfer_on_end(end.transfer_to)
            except ValueError:
                log.warning("transfer_unavailable")  # no REST access: the call ends instead
        self._arm_deadline()

    async def _on_voice_change(self, change: VoiceChange) -> None:
        # Called by routing inside a pipecat function action; it logs what this raises (the
        # agent then speaks in the voice in use), and the call goes on.
        if self._call is None:
            log.warning("voice_change_without_pipeline", agent=change.agent)
            return
        await self._call.speak_as(change.agent)

    async def _summarize(self, messages: Sequence[Mapping[str, Any]]) -> str | None:
        # The flow is built before the pipeline (and its LLM): bound late.
        if self._call is None:
            return None
        return await llm_summarizer(self._call.llm)(messages)

    def _note_transfer(self, record: CallRecord) -> None:
        if record.transfer_to is None:
            return
        transferred = None if self._transport is None else self._transport.transferred
        if transferred:
            record.add_event(SessionEventKind.TRANSFER_COMPLETED)
        else:
            # Not tried (the caller left during the announcement) or refused by the carrier.
            record.add_event(SessionEventKind.TRANSFER_FAILED, {"attempted": transferred is False})

    async def _answered_by(self) -> str | None:
        """The carrier's answering-machine result; None when unknown (the call goes on)."""
        if not self._deps.machine_detection or self._control is None:
            return None
        try:
            return await self._control.answered_by()
        except CallControlError:
            return None  # logged by CallControl; treat the callee as a person

    async def _hang_up_now(self) -> None:
        if self._control is not None:
            with contextlib.suppress(CallControlError):  # logged by CallControl
                await self._control.hang_up()
        # Without REST access, closing the stream ends the call (nothing follows <Connect>).
        with contextlib.suppress(Exception):
            await self._connection.close()

    async def _cap(self, record: CallRecord) -> None:
        """End a call that reaches `max_call_s` as gracefully as a conversation would."""
        await self._deps.sleep(self._deps.max_call_s)
        if record.outcome is not None or self._worker is None:
            return  # already ending (its own grace applies), or nothing runs to end
        self._capped = True
        log.warning("call_max_duration_reached", max_call_s=self._deps.max_call_s)
        record.add_event(
            SessionEventKind.MAX_DURATION_REACHED, {"max_call_s": self._deps.max_call_s}
        )
        self._arm_deadline()
        await self._worker.queue_frames(
            [
                TTSSpeakFrame(CAP_GOODBYE, append_to_context=False),
                EndFrame(reason="max call duration reached"),
            ]
        )

    def _arm_deadline(self) -> None:
        """From now on, the pipeline has `end_grace_s` to end on its own, then is cancelled."""
        if self._deadline is None:
            self._deadline = asyncio.create_task(self._cancel_after(self._deps.end_grace_s))

    async def _cancel_after(self, seconds: float) -> None:
        await self._deps.sleep(seconds)
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

    async def _keep_held(self, held: Held | None) -> None:
        """Keep the channel lease and the media reservation alive; finalization releases them."""
        deps = self._deps
        if held is None:
            return
        await keep_held(
            held,
            deps.redis,
            channel_lease_ttl_s=deps.channel_lease_ttl_s,
            media_reservation_ttl_s=deps.media_reservation_ttl_s,
            sleep=deps.sleep,
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
            await asyncio.to_thread(
                self._deps.tasks.send_task, FINALIZE_TASK, args=args, ignore_result=True
            )
        except Exception:
            # The reconciler closes attempts whose finalize message was lost (`ended_at`).
            log.exception("finalize_send_failed")
            return
        log.info("call_finalize_sent", outcome=args[1], decided_by=args[2])
