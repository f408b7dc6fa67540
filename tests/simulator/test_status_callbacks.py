"""Status callbacks: each persona's sequence, Twilio's parameters, signatures checked with
the SDK's RequestValidator, event subscriptions, GET callbacks, duplicate/reorder knobs,
instant mode."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from tests.simulator.helpers import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM,
    UNREACHABLE_WS,
    CallbackReceiver,
    Hook,
    stream_twiml,
)

ALL_EVENTS = ["initiated", "ringing", "answered", "completed"]
PAUSE_1S = '<Response><Pause length="1"/></Response>'


def _place(
    client: Any,
    receiver: CallbackReceiver,
    to: str,
    twiml: str = PAUSE_1S,
    events: list[str] | None = ALL_EVENTS,
    **params: Any,
) -> list[Hook]:
    if events is not None:
        params["status_callback_event"] = events
    call = client.calls.create(
        to=to, from_=FROM, twiml=twiml, status_callback=receiver.url, **params
    )
    return receiver.wait_final(call.sid)


def _valid(hook: Hook, token: str = AUTH_TOKEN) -> bool:
    return bool(RequestValidator(token).validate(hook.url, hook.params, hook.signature))


def test_confirm_sequence_is_signed_and_carries_twilio_parameters(
    client: Any, receiver: CallbackReceiver
) -> None:
    hooks = _place(client, receiver, "+14155550123")
    assert [h.params["CallStatus"] for h in hooks] == [
        "initiated",
        "ringing",
        "in-progress",
        "completed",
    ]
    assert [h.params["SequenceNumber"] for h in hooks] == ["0", "1", "2", "3"]
    for hook in hooks:
        assert hook.method == "POST" and hook.url.endswith("/twilio/status?leg=a")
        assert _valid(hook)
        assert not _valid(hook, token="some-other-token")
        tampered = Hook(
            hook.method,
            hook.url,
            hook.signature,
            {**hook.params, "CallStatus": "busy"},
            hook.received_at,
        )
        assert not _valid(tampered)
        params = hook.params
        assert params["AccountSid"] == ACCOUNT_SID and params["ApiVersion"] == "2010-04-01"
        assert params["Direction"] == "outbound-api" and params["From"] == FROM
        assert params["To"] == "+14155550123" and params["Called"] == params["To"]
        assert params["CallbackSource"] == "call-progress-events"
        assert parsedate_to_datetime(params["Timestamp"]).tzinfo is not None
        assert "AnsweredBy" not in params  # machine detection was not requested
    assert "CallDuration" not in hooks[2].params
    assert int(hooks[-1].params["CallDuration"]) >= 1
    assert hooks[-1].params["Duration"] == "1"  # billed minutes


def test_no_answer_rings_until_the_timeout(client: Any, receiver: CallbackReceiver) -> None:
    hooks = _place(client, receiver, "+14155550001", timeout=1)  # rule 0001: no_answer
    assert [h.params["CallStatus"] for h in hooks] == ["initiated", "ringing", "no-answer"]
    assert "CallDuration" not in hooks[-1].params and all(_valid(h) for h in hooks)


def test_busy_never_rings(client: Any, receiver: CallbackReceiver) -> None:
    hooks = _place(client, receiver, "+14155550000")  # rule 0000: busy
    assert [h.params["CallStatus"] for h in hooks] == ["initiated", "busy"]
    assert all(_valid(h) for h in hooks)


@pytest.mark.parametrize(
    ("detection", "answered_by"),
    [("Enable", "machine_start"), ("DetectMessageEnd", "machine_end_beep")],
)
def test_voicemail_is_answered_by_a_machine(
    client: Any, receiver: CallbackReceiver, detection: str, answered_by: str
) -> None:
    hooks = _place(client, receiver, "+14155550002", machine_detection=detection)
    assert [h.params["CallStatus"] for h in hooks] == [
        "initiated",
        "ringing",
        "in-progress",
        "completed",
    ]
    assert [h.params.get("AnsweredBy") for h in hooks] == [None, None, answered_by, answered_by]
    assert client.calls(hooks[0].params["CallSid"]).fetch().answered_by == answered_by


def test_stream_parameter_beats_the_number_rule(client: Any, receiver: CallbackReceiver) -> None:
    hooks = _place(
        client,
        receiver,
        "+14155550000",  # would be busy by rule
        twiml=stream_twiml(UNREACHABLE_WS, "confirm"),
        machine_detection="Enable",
    )
    assert [h.params["CallStatus"] for h in hooks][-2:] == ["in-progress", "completed"]
    assert hooks[-1].params["AnsweredBy"] == "human"


def test_only_subscribed_events_are_sent_but_the_final_always_is(
    client: Any, receiver: CallbackReceiver
) -> None:
    answered = _place(client, receiver, "+14155550123", events=["answered"])
    assert [h.params["CallStatus"] for h in answered] == ["in-progress", "completed"]
    assert [h.params["SequenceNumber"] for h in answered] == ["0", "1"]
    nothing = _place(client, receiver, "+14155550000", events=None)
    assert [h.params["CallStatus"] for h in nothing] == ["busy"]


def test_get_callbacks_are_signed_over_the_query_string(
    client: Any, receiver: CallbackReceiver
) -> None:
    hooks = _place(client, receiver, "+14155550000", status_callback_method="GET")
    assert [h.method for h in hooks] == ["GET", "GET"]
    assert all(RequestValidator(AUTH_TOKEN).validate(h.url, {}, h.signature) for h in hooks)


def test_hanging_up_while_ringing_cancels(sim_factory: Any, receiver: CallbackReceiver) -> None:
    with sim_factory(ring_s=10.0) as (_, client):
        call = client.calls.create(
            to="+14155550123",
            from_=FROM,
            twiml=PAUSE_1S,
            status_callback=receiver.url,
            status_callback_event=ALL_EVENTS,
        )
        for _ in range(500):
            if "ringing" in receiver.statuses(call.sid):
                break
            time.sleep(0.01)
        client.calls(call.sid).update(status="completed")
        hooks = receiver.wait_final(call.sid)
    assert [h.params["CallStatus"] for h in hooks] == ["initiated", "ringing", "canceled"]


def test_duplicate_callbacks_knob(sim_factory: Any, receiver: CallbackReceiver) -> None:
    with sim_factory(duplicate_callbacks=True) as (_, client):
        hooks = _place(client, receiver, "+14155550000")
    assert [h.params["SequenceNumber"] for h in hooks] == ["0", "0", "1", "1"]
    assert hooks[0].params == hooks[1].params and all(_valid(h) for h in hooks)


def test_reordered_callbacks_knob(sim_factory: Any, receiver: CallbackReceiver) -> None:
    with sim_factory() as (sim, client):
        httpx.post(f"{sim.base_url}/_sim/faults", json={"reorder_callbacks": True})
        hooks = _place(client, receiver, "+14155550123")
    sequence = [int(h.params["SequenceNumber"]) for h in hooks]
    assert sorted(sequence) == [0, 1, 2, 3] and sequence != [0, 1, 2, 3]
    assert [h.params["CallStatus"] for h in hooks] == [
        "ringing",
        "initiated",
        "completed",
        "in-progress",
    ]  # completed before answered


def test_instant_mode_skips_ringing_time_and_media(
    sim_factory: Any, receiver: CallbackReceiver
) -> None:
    with sim_factory(instant=True, ring_s=30.0) as (sim, client):
        hooks = _place(
            client, receiver, "+14155550123", twiml=stream_twiml(UNREACHABLE_WS, "confirm")
        )
        busy = _place(client, receiver, "+14155550000", twiml=PAUSE_1S)
        report = httpx.get(f"{sim.base_url}/_sim/calls/{hooks[0].params['CallSid']}").json()
    assert [h.params["CallStatus"] for h in hooks] == [
        "initiated",
        "ringing",
        "in-progress",
        "completed",
    ]
    # Instant mode skipped the 30 s ring: wait_final gives up after 15 s.
    assert report["streams"] == [] and report["errors"] == []  # no stream was even tried
    assert [h.params["CallStatus"] for h in busy] == ["initiated", "busy"]
    assert all(_valid(h) for h in hooks + busy)


EXPECTED_SEQUENCES = {
    "no_answer": ["initiated", "ringing", "no-answer"],
    "busy": ["initiated", "busy"],
    **{
        name: ["initiated", "ringing", "in-progress", "completed"]
        for name in (
            "confirm",
            "decline",
            "voicemail",
            "hangup_mid",
            "barge_in",
            "silent",
            "wrong_person",
            "reschedule",
        )
    },
}


@pytest.mark.parametrize(("persona", "expected"), sorted(EXPECTED_SEQUENCES.items()))
def test_every_persona_named_in_the_stream_gets_its_sequence(
    client: Any, receiver: CallbackReceiver, persona: str, expected: list[str]
) -> None:
    hooks = _place(
        client,
        receiver,
        "+14155550123",
        timeout=1,
        machine_detection="Enable",
        twiml=stream_twiml(UNREACHABLE_WS, persona),
    )
    assert [h.params["CallStatus"] for h in hooks] == expected
    answered_by = {h.params.get("AnsweredBy") for h in hooks} - {None}
    if "in-progress" in expected:
        assert answered_by == {"machine_start" if persona == "voicemail" else "human"}
    else:
        assert answered_by == set()
