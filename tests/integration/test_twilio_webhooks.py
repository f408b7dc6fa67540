"""Twilio's webhooks on the API: signatures (good, missing, wrong, tampered, behind a proxy),
status callbacks applied idempotently, and the inbound answer for known, unknown and
over-capacity numbers."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from dispatcher.api import create_app
from shared.call_tokens import verify_call_token
from shared.db.models import CallAttempt, Lead, PhoneNumber
from shared.db.session import transaction
from shared.enums import AttemptState, Direction, LeadStatus, Outcome
from shared.settings import Settings
from tests.integration.fleet import MEDIA_WORKER, STREAM_URL, Fleet

TOKEN = "simulator-auth-token"
PHONE = "+919812345678"


class RecordingTasks:
    """Stands in for the broker: the API's follow-ups are asserted, not executed."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[Any], dict[str, Any]]] = []

    def send_task(self, name: str, args: Any = None, **options: Any) -> None:
        self.sent.append((name, list(args or []), options))


@pytest.fixture
def tasks() -> RecordingTasks:
    return RecordingTasks()


@pytest.fixture
def api(
    settings: Settings, sessions: Any, redis_client: Any, tasks: RecordingTasks
) -> Iterator[TestClient]:
    with TestClient(create_app(settings, tasks=tasks)) as client:
        yield client


def signed_post(
    api: TestClient, path: str, params: dict[str, str], *, url_base: str = "http://testserver",
    token: str = TOKEN, tamper: dict[str, str] | None = None,
) -> Any:  # fmt: skip
    signature = RequestValidator(token).compute_signature(url_base + path, params)
    body = urlencode({**params, **(tamper or {})})
    return api.post(
        path,
        content=body,
        headers={
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )


def dialed(fleet: Any) -> tuple[Fleet, Any, str]:
    f: Fleet = fleet()
    lead_id = f.add_lead(PHONE)
    f.queue()
    verdict = f.dispatch(lead_id)
    assert verdict.call_sid is not None
    return f, verdict.attempt_id, verdict.call_sid


def status_params(call_sid: str, status: str, **extra: str) -> dict[str, str]:
    return {"CallSid": call_sid, "CallStatus": status, "AccountSid": "AC" + "0" * 32, **extra}


def test_status_callbacks_need_a_valid_signature(api: TestClient, fleet: Any) -> None:
    f, attempt_id, sid = dialed(fleet)
    path = f"/telephony/twilio/status?attempt={attempt_id}"
    params = status_params(sid, "ringing")
    no_signature = api.post(path, data=params)
    wrong_token = signed_post(api, path, params, token="not-the-token")
    tampered = signed_post(api, path, params, tamper={"CallStatus": "busy"})
    for response in (no_signature, wrong_token, tampered):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "bad_signature"
    assert f.attempts(f.lead(_lead_of(f, attempt_id)).id)[0].events == []

    assert signed_post(api, path, params).status_code == 204
    assert [e["status"] for e in f.attempts(_lead_of(f, attempt_id))[0].events] == ["ringing"]


def _lead_of(f: Fleet, attempt_id: Any) -> Any:
    with f.sessions() as session:
        return session.scalar(select(CallAttempt.lead_id).where(CallAttempt.id == attempt_id))


def test_status_applies_once_and_asks_the_fleet_to_finalize(
    api: TestClient, fleet: Any, tasks: RecordingTasks
) -> None:
    f, attempt_id, sid = dialed(fleet)
    path = f"/telephony/twilio/status?attempt={attempt_id}"
    for status in ("initiated", "ringing", "no-answer", "no-answer", "ringing"):
        assert signed_post(api, path, status_params(sid, status)).status_code == 204
    finalizations = [s for s in tasks.sent if s[0] == "callfleet.finalize_attempt"]
    assert finalizations == [
        (
            "callfleet.finalize_attempt",
            [str(attempt_id), Outcome.NO_ANSWER, "carrier"],
            {"ignore_result": True},
        )
    ]
    [attempt] = f.attempts(_lead_of(f, attempt_id))
    assert attempt.state == AttemptState.RINGING and attempt.ended_at is not None


def test_answered_by_machine_hangs_up(api: TestClient, fleet: Any, tasks: RecordingTasks) -> None:
    f, attempt_id, sid = dialed(fleet)
    path = f"/telephony/twilio/status?attempt={attempt_id}"
    params = status_params(sid, "in-progress", AnsweredBy="machine_end_beep")
    assert signed_post(api, path, params).status_code == 204
    names = [name for name, _, _ in tasks.sent]
    assert "callfleet.hang_up" in names and "callfleet.finalize_attempt" in names


def test_proxy_base_url_is_what_the_signature_covers(
    settings: Settings, sessions: Any, redis_client: Any, fleet: Any
) -> None:
    f, attempt_id, sid = dialed(fleet)
    public = "https://api.callfleet.example"
    behind_proxy = settings.model_copy(update={"twilio_webhook_base_url": public})
    with TestClient(create_app(behind_proxy, tasks=RecordingTasks())) as api:
        path = f"/telephony/twilio/status?attempt={attempt_id}"
        params = status_params(sid, "ringing")
        assert signed_post(api, path, params).status_code == 403  # signed for the inner URL
        assert signed_post(api, path, params, url_base=public).status_code == 204


def _configure_inbound(f: Fleet) -> None:
    with transaction(f.sessions) as session:
        number = session.scalar(select(PhoneNumber).where(PhoneNumber.e164 == f.number_e164))
        assert number is not None
        number.inbound_template = f.template


def inbound_params(f: Fleet, call_sid: str, to: str | None = None) -> dict[str, str]:
    return {
        "CallSid": call_sid, "From": PHONE, "To": to or f.number_e164,
        "CallStatus": "ringing", "Direction": "inbound", "AccountSid": "AC" + "0" * 32,
    }  # fmt: skip


def test_inbound_call_to_a_configured_number_streams_to_a_media_worker(
    api: TestClient, fleet: Any, settings: Settings
) -> None:
    f: Fleet = fleet()
    _configure_inbound(f)
    sid = "CA" + uuid.uuid4().hex
    response = signed_post(api, "/telephony/twilio/inbound", inbound_params(f, sid))
    assert response.status_code == 200
    stream = ET.fromstring(response.text).find("./Connect/Stream")
    assert stream is not None and stream.get("url") == STREAM_URL
    token = stream.find("./Parameter[@name='token']")
    assert token is not None
    claims = verify_call_token(
        settings.call_token_secret.get_secret_value().encode(), str(token.get("value"))
    )
    with f.sessions() as session:
        attempt = session.get(CallAttempt, uuid.UUID(claims.attempt_id))
        assert attempt is not None and attempt.provider_call_sid == sid
        assert attempt.media_worker_id == MEDIA_WORKER
        lead = session.get(Lead, attempt.lead_id)
        assert lead is not None
        assert (lead.direction, lead.status, lead.phone) == (
            Direction.INBOUND,
            LeadStatus.IN_CALL,
            PHONE,
        )
    assert f.channels.in_use(f.number_id()) == 1

    retried = signed_post(api, "/telephony/twilio/inbound", inbound_params(f, sid))
    assert "<Stream" in retried.text
    with f.sessions() as session:
        assert len(session.scalars(select(Lead)).all()) == 1  # the retry answered the same call


def test_inbound_to_an_unknown_number_says_so_and_hangs_up(api: TestClient, fleet: Any) -> None:
    f: Fleet = fleet()
    response = signed_post(
        api, "/telephony/twilio/inbound", inbound_params(f, "CA" + "1" * 32, to="+14155550111")
    )
    root = ET.fromstring(response.text)
    assert root.find("./Say") is not None and root.find("./Hangup") is not None
    assert root.find("./Connect") is None


def test_inbound_without_media_capacity_is_a_polite_busy_on_record(
    api: TestClient, fleet: Any
) -> None:
    f: Fleet = fleet()
    _configure_inbound(f)
    f.slots.withdraw(MEDIA_WORKER)
    response = signed_post(api, "/telephony/twilio/inbound", inbound_params(f, "CA" + "2" * 32))
    root = ET.fromstring(response.text)
    say = root.find("./Say")
    assert say is not None and "busy" in (say.text or "")
    with f.sessions() as session:
        [lead] = session.scalars(select(Lead)).all()
    assert (lead.status, lead.outcome) == (LeadStatus.FINISHED, Outcome.BUSY)
    assert f.channels.in_use(f.number_id()) == 0


def test_inbound_needs_a_valid_signature(api: TestClient, fleet: Any) -> None:
    f: Fleet = fleet()
    _configure_inbound(f)
    response = api.post("/telephony/twilio/inbound", data=inbound_params(f, "CA" + "3" * 32))
    assert response.status_code == 403
