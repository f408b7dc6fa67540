"""The real twilio SDK (sync) against the simulator's Calls API: create, fetch, list with
filters and paging, hang up, Twilio-shaped errors, and the fault knobs."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException

from simulator import ThreadedSimulator
from simulator.sdk import sdk_client
from tests.simulator.helpers import (
    ACCOUNT_SID,
    FROM,
    TO,
    UNREACHABLE_WS,
    CallbackReceiver,
    stream_twiml,
)

CALL_SID = re.compile(r"^CA[0-9a-f]{32}$")


def _silent_call(client: Any, to: str = TO, **params: Any) -> Any:
    return client.calls.create(
        to=to, from_=FROM, twiml=stream_twiml(UNREACHABLE_WS, "silent"), **params
    )


def test_create_fetch_and_hang_up_through_the_sdk(client: Any, receiver: CallbackReceiver) -> None:
    call = client.calls.create(
        to=TO,
        from_=FROM,
        twiml=stream_twiml("ws://127.0.0.1:9/media", "confirm", token="x"),
        status_callback=receiver.url,
        timeout=25,
        machine_detection="Enable",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
        status_callback_method="POST",
    )
    assert CALL_SID.match(call.sid)
    assert call.status == "queued" and call.to == TO and call._from == FROM
    assert call.direction == "outbound-api" and call.account_sid == ACCOUNT_SID
    assert call.date_created is not None and call.api_version == "2010-04-01"

    receiver.wait_final(call.sid)
    fetched = client.calls(call.sid).fetch()
    assert fetched.sid == call.sid and fetched.status == "completed"
    assert fetched.answered_by == "human" and fetched.start_time is not None
    assert fetched.end_time >= fetched.start_time and int(fetched.duration) >= 1


def _wait_status(client: Any, sid: str, status: str) -> Any:
    for _ in range(200):
        call = client.calls(sid).fetch()
        if call.status == status:
            return call
        time.sleep(0.02)
    raise AssertionError(f"{sid} never became {status}")


def test_hanging_up_an_answered_call_completes_it(client: Any, receiver: CallbackReceiver) -> None:
    call = client.calls.create(
        to=TO,
        from_=FROM,
        status_callback=receiver.url,
        twiml='<Response><Pause length="60"/></Response>',
    )
    _wait_status(client, call.sid, "in-progress")
    time.sleep(1.0)
    ended = client.calls(call.sid).update(status="completed")
    assert ended.status == "completed" and int(ended.duration) >= 1
    final = receiver.wait_final(call.sid)[-1].params
    assert final["CallStatus"] == "completed" and final["CallDuration"] == ended.duration
    again = client.calls(call.sid).update(status="completed")  # idempotent once ended
    assert again.status == "completed"


def test_canceling_a_ringing_call(sim_factory: Any) -> None:
    with sim_factory(ring_s=5.0) as (_, client):
        call = _silent_call(client)
        canceled = client.calls(call.sid).update(status="canceled")
        assert canceled.status == "canceled"
        assert client.calls(call.sid).fetch().duration == "0"


def test_list_filters_by_to_status_and_start_time_and_pages(client: Any) -> None:
    other = "+14155550124"
    mine = [_silent_call(client, to=other) for _ in range(5)]
    _silent_call(client, to=TO)
    for call in mine:
        client.calls(call.sid).update(status="completed")
    listed = client.calls.list(to=other, page_size=2)
    assert [c.sid for c in listed] == [c.sid for c in reversed(mine)]  # newest first, 3 pages
    assert client.calls.list(to=other, status="in-progress") == []
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    assert len(client.calls.list(to=other, start_time_after=an_hour_ago)) == 5
    assert (
        client.calls.list(to=other, start_time_after=datetime.now(UTC) + timedelta(hours=1)) == []
    )
    page = client.calls.page(to=other, page_size=2)
    assert len(list(page)) == 2 and page.next_page_url is not None


def test_bad_credentials_get_401_with_code_20003(sim: ThreadedSimulator) -> None:
    wrong = sdk_client(sim.base_url, ACCOUNT_SID, "not-the-token")
    try:
        with pytest.raises(TwilioRestException) as caught:
            _silent_call(wrong)
        assert (caught.value.status, caught.value.code) == (401, 20003)
    finally:
        wrong.http_client.session.close()
    response = httpx.get(f"{sim.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


@pytest.mark.parametrize(
    ("to", "from_", "code"),
    [
        ("+1415", FROM, 21211),
        ("4155550123", FROM, 21211),
        (TO, "+44", 21212),
        (TO, "CallFleet", 21212),
    ],
)
def test_invalid_numbers_get_400_with_twilio_codes(
    client: Any, to: str, from_: str, code: int
) -> None:
    with pytest.raises(TwilioRestException) as caught:
        client.calls.create(to=to, from_=from_, twiml="<Response><Hangup/></Response>")
    assert (caught.value.status, caught.value.code) == (400, code)


def test_unknown_call_is_404_20404(client: Any) -> None:
    with pytest.raises(TwilioRestException) as caught:
        client.calls("CA" + "f" * 32).fetch()
    assert (caught.value.status, caught.value.code) == (404, 20404)


def test_redirecting_a_call_that_is_not_in_progress_is_21220(client: Any) -> None:
    call = client.calls.create(
        to="+14155550000",
        from_=FROM,  # ends in 0000: busy
        twiml="<Response><Hangup/></Response>",
    )
    _wait_status(client, call.sid, "busy")
    with pytest.raises(TwilioRestException) as caught:
        client.calls(call.sid).update(twiml="<Response><Say>hi</Say></Response>")
    assert (caught.value.status, caught.value.code) == (400, 21220)


def test_injected_create_failures_come_back_in_order(sim: ThreadedSimulator, client: Any) -> None:
    knobs = httpx.post(
        f"{sim.base_url}/_sim/faults",
        json={"fail_next_creates": [500, 429, {"status": 400, "code": 21215, "message": "Geo"}]},
    )
    assert knobs.status_code == 200 and len(knobs.json()["fail_next_creates"]) == 3
    seen = []
    for _ in range(3):
        with pytest.raises(TwilioRestException) as caught:
            _silent_call(client)
        seen.append((caught.value.status, caught.value.code))
    assert seen == [(500, 20500), (429, 20429), (400, 21215)]
    assert CALL_SID.match(_silent_call(client).sid)  # the queue is used up
    bad = httpx.post(f"{sim.base_url}/_sim/faults", json={"fail_next_creates": ["boom"]})
    assert bad.status_code == 400
    assert httpx.delete(f"{sim.base_url}/_sim/faults").json()["fail_next_creates"] == []


def test_failing_update_is_injectable(sim: ThreadedSimulator, client: Any) -> None:
    call = _silent_call(client)
    httpx.post(f"{sim.base_url}/_sim/faults", json={"fail_next_updates": [503]})
    with pytest.raises(TwilioRestException) as caught:
        client.calls(call.sid).update(status="completed")
    assert (caught.value.status, caught.value.code) == (503, 20503)
    assert client.calls(call.sid).update(status="completed").status in ("completed", "canceled")


def test_admin_report_and_health(sim: ThreadedSimulator, client: Any) -> None:
    call = _silent_call(client, to="+14155550005")  # rule: 0005 is barge_in
    report = httpx.get(f"{sim.base_url}/_sim/calls/{call.sid}").json()
    assert report["call"]["sid"] == call.sid and report["persona"] == "silent"
    health = httpx.get(f"{sim.base_url}/_sim/health").json()
    assert health["status"] == "ok" and health["calls"] == 1
    missing = httpx.get(f"{sim.base_url}/_sim/calls/CAnope")
    assert missing.status_code == 404 and missing.json()["code"] == 20404
