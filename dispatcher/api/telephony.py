"""Twilio's webhooks: call status callbacks and the inbound answer. Every request must carry
a valid `X-Twilio-Signature` for the exact URL Twilio called, or it is refused with 403."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from dispatcher.api.auth import get_deps
from dispatcher.api.deps import ApiDeps
from dispatcher.call_events import (
    CallStatus,
    NextStep,
    apply_call_status,
    send_follow_ups,
    voicemail_hangs_up,
)
from dispatcher.inbound import (
    AnsweredCall,
    existing_answer,
    record_answered,
    record_refused,
    route_for,
    take_capacity,
)
from dispatcher.providers.twilio import stream_twiml
from shared.call_tokens import issue_call_token
from shared.coordination import ChannelLeases, MediaSlots
from shared.db.models import CallAttempt
from shared.db.session import transaction
from shared.phones import InvalidPhone, to_e164

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/telephony/twilio", tags=["telephony"])
Deps = Annotated[ApiDeps, Depends(get_deps)]

NOT_IN_SERVICE = "Sorry, this number is not in service. Goodbye."
ALL_BUSY = "Sorry, all our assistants are busy right now. Please call again in a few minutes."


def _signed_url(request: Request, deps: ApiDeps) -> str:
    base = deps.settings.twilio_webhook_base_url
    if base is None:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return base.rstrip("/") + request.url.path + query


async def _verified_form(request: Request, deps: ApiDeps) -> dict[str, str] | None:
    form = {key: str(value) for key, value in (await request.form()).items()}
    validator = RequestValidator(deps.settings.twilio_auth_token.get_secret_value())
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not validator.validate(_signed_url(request, deps), form, signature):
        return None
    return form


def _forbidden() -> JSONResponse:
    body = {"error": {"code": "bad_signature", "message": "X-Twilio-Signature does not match"}}
    return JSONResponse(body, status_code=403)


def _twiml(xml: str) -> Response:
    return Response(xml, media_type="application/xml")


def _say_and_hang_up(text: str) -> Response:
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return _twiml(str(response.to_xml()))


def _attempt_for(deps: ApiDeps, attempt: str | None, call_sid: str) -> uuid.UUID | None:
    if attempt:
        try:
            return uuid.UUID(attempt)
        except ValueError:
            return None
    with deps.sessions() as session:
        return session.scalar(
            select(CallAttempt.id).where(CallAttempt.provider_call_sid == call_sid)
        )


def _apply_status(deps: ApiDeps, attempt_id: uuid.UUID, event: CallStatus) -> NextStep:
    with transaction(deps.sessions) as session:
        hangs_up = voicemail_hangs_up(session, attempt_id)
        return apply_call_status(
            session, attempt_id, event, datetime.now(UTC), voicemail_hangs_up=hangs_up
        )


def _follow_up(deps: ApiDeps, attempt_id: uuid.UUID, event: CallStatus, step: NextStep) -> None:
    if deps.tasks is not None:
        send_follow_ups(
            deps.tasks,
            attempt_id,
            event.call_sid,
            step,
            grace_s=deps.settings.conversation_report_grace_s,
        )


@router.post("/status", status_code=204)
async def twilio_status(request: Request, deps: Deps, attempt: str | None = None) -> Response:
    """Applied at once in PostgreSQL (duplicates and late events change nothing); the
    finalization it calls for goes to the fleet, and the reconciler backs that up."""
    form = await _verified_form(request, deps)
    if form is None:
        return _forbidden()
    event = CallStatus(
        call_sid=form.get("CallSid", ""),
        status=form.get("CallStatus", ""),
        answered_by=form.get("AnsweredBy") or None,
        duration_s=int(form["CallDuration"]) if form.get("CallDuration", "").isdigit() else None,
    )
    attempt_id = await run_in_threadpool(_attempt_for, deps, attempt, event.call_sid)
    if attempt_id is None or not event.call_sid:
        log.info("status_for_unknown_call", call_sid=event.call_sid)
        return Response(status_code=204)
    step = await run_in_threadpool(_apply_status, deps, attempt_id, event)
    await run_in_threadpool(_follow_up, deps, attempt_id, event, step)
    return Response(status_code=204)


def _answer(deps: ApiDeps, called: str, caller: str, call_sid: str) -> AnsweredCall | str:
    """The call to connect, or the words to say before hanging up."""
    settings = deps.settings
    with transaction(deps.sessions) as session:
        previous = existing_answer(session, call_sid)
        if previous is not None:
            return previous
        route = route_for(session, called)
        if route is None:
            return NOT_IN_SERVICE
        taken = take_capacity(
            ChannelLeases(deps.redis),
            MediaSlots(deps.redis),
            route.number,
            lease_ttl_s=settings.channel_lease_ttl_s,
            reservation_ttl_s=settings.media_reservation_ttl_s,
        )
        if taken is None:
            record_refused(session, route, caller=caller, call_sid=call_sid)
            return ALL_BUSY
        token, worker_id, reservation_id, stream_url = taken
        lead_id, attempt_id = record_answered(
            session,
            route,
            caller=caller,
            call_sid=call_sid,
            channel_token_id=token,
            media_worker_id=worker_id,
            media_reservation_id=reservation_id,
            stream_url=stream_url,
        )
        return AnsweredCall(attempt_id, lead_id, stream_url)


@router.post("/inbound")
async def twilio_inbound(request: Request, deps: Deps) -> Response:
    form = await _verified_form(request, deps)
    if form is None:
        return _forbidden()
    try:
        called, caller = to_e164(form.get("To", "")), to_e164(form.get("From", ""))
    except InvalidPhone:
        return _say_and_hang_up(NOT_IN_SERVICE)
    answer = await run_in_threadpool(_answer, deps, called, caller, form.get("CallSid", ""))
    if isinstance(answer, str):
        log.info("inbound_refused", reason=answer)
        return _say_and_hang_up(answer)
    token = issue_call_token(
        deps.settings.call_token_secret.get_secret_value().encode(),
        attempt_id=str(answer.attempt_id),
        lead_id=str(answer.lead_id),
    )
    return _twiml(stream_twiml(answer.stream_url, {"token": token}))
