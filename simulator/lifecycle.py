"""One call's life as one task: initiate, ring, answer (or not) per persona, run the TwiML
(media streams included), hang up, and report each status through the callback sender."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
import structlog
from yarl import URL

from simulator.audio import SpeechSynth
from simulator.callbacks import CallbackSender, request_params, signed_request
from simulator.calls import Call, CallStatus
from simulator.conversation import run_script
from simulator.errors import StreamConnectError, TwimlError
from simulator.media_client import MediaStreamClient
from simulator.personas import PERSONA_PARAMETER, Persona, Pickup
from simulator.settings import SimulatorSettings
from simulator.sidechannel import TranscriptPublisher
from simulator.twiml import Dial, Hangup, Pause, Say, Stream, Unsupported, Verb, parse_twiml

logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class CallEnv:
    """What every call task shares."""

    settings: SimulatorSettings
    callbacks: CallbackSender
    synth: SpeechSynth
    publisher: TranscriptPublisher
    http: aiohttp.ClientSession
    personas: Mapping[str, Persona]


async def run_call(call: Call, env: CallEnv) -> None:
    log = logger.bind(call_sid=call.sid, persona=call.persona.name)
    try:
        final = await _progress(call, env)
    except Exception as exc:  # boundary: one broken call must not take the simulator down
        log.exception("call_crashed")
        call.report.errors.append(repr(exc))
        answered = call.status is CallStatus.IN_PROGRESS
        final = CallStatus.COMPLETED if answered else CallStatus.FAILED
    _advance(call, env, final)
    log.info("call_ended", status=final.value, duration_s=call.duration_s)


def _advance(call: Call, env: CallEnv, status: CallStatus) -> None:
    call.move(status)
    env.callbacks.emit(call, status)


async def _hold(call: Call, seconds: float) -> bool:
    """Wait `seconds` unless interrupted (hang-up or redirect); True when interrupted."""
    if call.interrupted.is_set():
        return True
    if seconds <= 0:
        return False
    try:
        async with asyncio.timeout(seconds):
            await call.interrupted.wait()
    except TimeoutError:
        return False
    return True


async def _progress(call: Call, env: CallEnv) -> CallStatus:
    settings = env.settings
    instant = settings.instant
    _advance(call, env, CallStatus.INITIATED)
    pickup = call.persona.pickup
    if pickup is Pickup.BUSY:
        hung_up = await _hold(call, 0 if instant else settings.busy_after_s)
        return CallStatus.CANCELED if hung_up else CallStatus.BUSY
    _advance(call, env, CallStatus.RINGING)
    ring_s = (
        0.0
        if instant
        else (settings.ring_s if settings.ring_s is not None else call.persona.ring_s)
    )
    if pickup is Pickup.NO_ANSWER or ring_s >= call.request.timeout_s:
        hung_up = await _hold(call, 0 if instant else call.request.timeout_s)
        return CallStatus.CANCELED if hung_up else CallStatus.NO_ANSWER
    if await _hold(call, ring_s):
        return CallStatus.CANCELED
    detection = call.request.machine_detection
    if detection:
        machine = "machine_end_beep" if detection == "DetectMessageEnd" else "machine_start"
        call.answered_by = machine if pickup is Pickup.MACHINE else "human"
    _advance(call, env, CallStatus.IN_PROGRESS)
    if not instant:
        await _execute(call, env)
    return CallStatus.COMPLETED


async def _execute(call: Call, env: CallEnv) -> None:
    """Run the document until it ends, the call is hung up, or a verb ends the call."""
    verbs = call.request.verbs if call.request.verbs is not None else await _fetch(call, env)
    pending = deque(verbs)
    while not call.hangup_requested:
        redirect = call.take_redirect()
        if redirect is not None:
            pending = deque(redirect)
        if not pending:
            return
        if await _perform(pending.popleft(), call, env):
            return


async def _perform(verb: Verb, call: Call, env: CallEnv) -> bool:
    """Run one verb; True when it ends the call."""
    match verb:
        case Say(text=text, loop=loop):
            call.report.twiml_said.append(text)
            await _hold(call, len(text) * env.settings.speech_ms_per_char / 1000 * max(loop, 1))
        case Pause(length_s=length_s):
            await _hold(call, length_s)
        case Hangup():
            return True
        case Dial(number=number):
            # The dialed party is not simulated: the bridge is recorded and ends at once,
            # and the document goes on after `<Dial>`, as Twilio's does.
            call.report.dialed.append(number)
        case Stream():
            return await _stream(verb, call, env)
        case Unsupported(tag=tag):
            logger.warning("twiml_verb_unsupported", call_sid=call.sid, verb=tag)
            call.report.errors.append(f"unsupported TwiML verb <{tag}> skipped")
    return False


async def _fetch(call: Call, env: CallEnv) -> tuple[Verb, ...]:
    """Fetch the TwiML from the call's Url on answer, signed like Twilio's own request."""
    url, body, headers = signed_request(
        env.settings.token,
        call.request.method,
        call.request.url or "",
        request_params(call, CallStatus.IN_PROGRESS),
    )
    timeout = aiohttp.ClientTimeout(total=env.settings.twiml_fetch_timeout_s)
    try:
        async with env.http.request(
            call.request.method,
            URL(url, encoded=True),
            data=body,
            headers=headers,
            timeout=timeout,
        ) as response:
            text = await response.text()
            if response.status >= 400:
                raise TwimlError(f"TwiML fetch answered HTTP {response.status}")
        return parse_twiml(text)
    except (aiohttp.ClientError, TimeoutError, TwimlError) as exc:
        # Twilio would say "an application error has occurred" and hang up.
        logger.warning("twiml_fetch_failed", call_sid=call.sid, error=repr(exc))
        call.report.errors.append(f"TwiML fetch failed: {exc!r}")
        return ()


async def _stream(stream: Stream, call: Call, env: CallEnv) -> bool:
    persona = call.persona
    requested = stream.parameters.get(PERSONA_PARAMETER)
    if requested is not None and requested in env.personas and requested != persona.name:
        persona = env.personas[requested]  # fetched TwiML: only the script can still change
    client = MediaStreamClient(
        stream=stream,
        call_sid=call.sid,
        account_sid=call.account_sid,
        persona=persona.name,
        synth=env.synth,
        publisher=env.publisher,
        turn_gap_ms=env.settings.bot_turn_gap_ms,
        open_timeout_s=env.settings.stream_open_timeout_s,
    )
    try:
        async with client:
            call.report.streams.append(client.report)
            reason = await _converse(call, client, persona, env.settings)
    except StreamConnectError as exc:
        logger.warning("stream_connect_failed", call_sid=call.sid, url=stream.url, error=exc.reason)
        call.report.errors.append(str(exc))
        return False
    client.report.end_reason = reason
    logger.info("stream_ended", call_sid=call.sid, reason=reason)
    return reason == "caller_hangup"


async def _converse(
    call: Call, client: MediaStreamClient, persona: Persona, settings: SimulatorSettings
) -> str:
    """Play the script until the caller hangs up, the API interrupts, or the worker closes."""
    script = asyncio.create_task(
        run_script(persona, client, bot_wait_s=settings.bot_wait_s, linger_s=settings.linger_s)
    )
    interrupted = asyncio.create_task(call.interrupted.wait())
    closed = asyncio.create_task(client.closed.wait())
    tasks = (script, interrupted, closed)
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if interrupted in done:
        return "api_hangup" if call.hangup_requested else "redirected"
    if script in done:
        script.result()  # re-raise what broke the script, for the call's boundary
        return "caller_hangup"
    return "worker_closed"
