"""TwilioProvider at the wire (a local stand-in for Twilio's REST API), its TwiML, its error
classification, and the in-process InstantProvider."""

from __future__ import annotations

import base64
import json
import socket
import threading
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import structlog
from pydantic import SecretStr
from twilio.base.exceptions import TwilioRestException, TwilioServiceException

from dispatcher.providers import (
    DialOutcomeUnknown,
    DialRequest,
    InstantProvider,
    InvalidDestination,
    ProviderError,
    ProviderOptions,
    ProviderRejected,
    ProviderUnavailable,
    TwilioProvider,
    provider_from_options,
)
from dispatcher.providers.twilio import error_from_twilio, stream_twiml

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "auth-token-not-for-logs"
CALL_TOKEN = "tok.en-value_that-must-stay-out-of-urls"
TO = "+14155550123"
FROM = "+14155550999"
CALLS_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"


def dial_request(**overrides: Any) -> DialRequest:
    fields: dict[str, Any] = {
        "to": TO,
        "from_": FROM,
        "stream_url": "wss://media-1.example.com/stream",
        "stream_parameters": {"token": CALL_TOKEN, "persona": "confirms"},
        "status_callback_url": "https://api.example.com/twilio/status",
        "ring_timeout_s": 25,
        "machine_detection": True,
    }
    fields.update(overrides)
    return DialRequest(**fields)


def call_json(sid: str, *, status: str = "queued", created: str | None = None) -> dict[str, Any]:
    return {
        "sid": sid,
        "account_sid": ACCOUNT_SID,
        "to": TO,
        "from": FROM,
        "status": status,
        "date_created": created or "Tue, 10 Aug 2010 08:02:17 +0000",
        "start_time": None,
    }


# --- a local stand-in for Twilio's REST endpoint -------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class FakeTwilio:
    """Records every request; answers from `script` (status, JSON body, or "stall"),
    defaulting to a freshly created call."""

    base_url: str = ""
    received: list[Received] = field(default_factory=list)
    script: deque[tuple[int, Any]] = field(default_factory=deque)
    release: threading.Event = field(default_factory=threading.Event)

    def answer(self, status: int, body: Any) -> None:
        self.script.append((status, body))


def _handler_for(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            url = urlsplit(self.path)
            fake.received.append(
                Received(
                    self.command,
                    url.path,
                    parse_qs(url.query),
                    parse_qs(body),
                    {k.lower(): v for k, v in self.headers.items()},
                )
            )
            status, payload = fake.script.popleft() if fake.script else (201, None)
            if payload == "stall":
                fake.release.wait(timeout=30)
                status, payload = 201, None
            if payload is None:
                payload = call_json("CA" + "a" * 32)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(fake))
    server.daemon_threads = True
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def provider(fake_twilio: FakeTwilio) -> Iterator[TwilioProvider]:
    twilio = TwilioProvider(ACCOUNT_SID, AUTH_TOKEN, api_base_url=fake_twilio.base_url)
    yield twilio
    twilio.close()


# --- TwiML ----------------------------------------------------------------------------------


def test_twiml_connects_a_stream_with_parameters_and_no_token_in_the_url() -> None:
    tricky = 'a&b"<c>'
    xml = stream_twiml("wss://media-1.example.com/stream", {"token": CALL_TOKEN, "note": tricky})
    root = ET.fromstring(xml)
    assert root.tag == "Response"
    stream = root.find("./Connect/Stream")
    assert stream is not None
    assert stream.get("url") == "wss://media-1.example.com/stream"
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params == {"token": CALL_TOKEN, "note": tricky}
    assert CALL_TOKEN not in (stream.get("url") or "")


@pytest.mark.parametrize(
    "url",
    [
        "wss://media-1.example.com/stream?token=x",
        "https://media-1.example.com/stream",
        "/stream",
        "wss://media-1.example.com/stream#frag",
    ],
)
def test_dial_request_refuses_stream_urls_twilio_would_mangle(url: str) -> None:
    with pytest.raises(ValueError):
        dial_request(stream_url=url)


def test_dial_request_refuses_ring_timeouts_twilio_refuses() -> None:
    with pytest.raises(ValueError):
        dial_request(ring_timeout_s=2)


def test_dial_request_repr_hides_the_token_and_the_number() -> None:
    text = repr(dial_request())
    assert CALL_TOKEN not in text and "4155550123" not in text
    assert "token" in text


# --- error classification --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "expected", "retryable"),
    [
        (503, None, ProviderUnavailable, True),
        (500, 20500, ProviderUnavailable, True),
        (408, None, ProviderUnavailable, True),
        (429, 20429, ProviderUnavailable, True),
        (400, 21211, InvalidDestination, False),
        (400, 21214, InvalidDestination, False),
        (400, 21215, InvalidDestination, False),
        (400, 21216, InvalidDestination, False),
        (400, 21217, InvalidDestination, False),
        (400, 21610, InvalidDestination, False),
        (400, 21205, ProviderRejected, False),
        (401, 20003, ProviderRejected, False),
        (404, 20404, ProviderRejected, False),
    ],
)
def test_twilio_errors_map_to_the_tree(
    status: int, code: int | None, expected: type[ProviderError], retryable: bool
) -> None:
    exc = TwilioRestException(status, CALLS_PATH, "Unable to create record", code, "POST")
    error = error_from_twilio(exc, dial=True)
    assert type(error) is expected
    assert error.retryable is retryable
    assert error.status_code == status
    assert error.provider_code == code


@pytest.mark.parametrize("status", [502, 504])
def test_a_gateway_error_leaves_a_dial_unknown_but_other_requests_just_unavailable(
    status: int,
) -> None:
    exc = TwilioRestException(status, CALLS_PATH, "Bad gateway", None, "POST")
    dial_error = error_from_twilio(exc, dial=True)
    assert type(dial_error) is DialOutcomeUnknown and dial_error.retryable
    assert type(error_from_twilio(exc, dial=False)) is ProviderUnavailable


def test_error_messages_mask_the_number_twilio_echoes() -> None:
    exc = TwilioRestException(
        400, CALLS_PATH, f"The 'To' number {TO} is not a valid phone number.", 21211, "POST"
    )
    error = error_from_twilio(exc)
    assert "4155550123" not in str(error)
    assert "21211" in str(error)


def test_rfc9457_service_errors_are_classified_too() -> None:
    exc = TwilioServiceException(
        type_uri="https://www.twilio.com/docs/errors/20429",
        title="Too Many Requests",
        status=429,
        code=20429,
    )
    error = error_from_twilio(exc)
    assert type(error) is ProviderUnavailable and error.retryable


# --- at the wire -----------------------------------------------------------------------------


def test_place_call_posts_the_fields_twilio_expects(
    fake_twilio: FakeTwilio, provider: TwilioProvider
) -> None:
    placed = provider.place_call(dial_request())

    assert placed.call_sid == "CA" + "a" * 32 and placed.provider == "twilio"
    [request] = fake_twilio.received
    assert (request.method, request.path) == ("POST", CALLS_PATH)
    expected_auth = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected_auth}"
    form = request.form
    assert form["To"] == [TO] and form["From"] == [FROM]
    assert form["StatusCallback"] == ["https://api.example.com/twilio/status"]
    assert form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert form["StatusCallbackMethod"] == ["POST"]
    assert form["Timeout"] == ["25"]
    assert form["MachineDetection"] == ["Enable"]
    stream = ET.fromstring(form["Twiml"][0]).find("./Connect/Stream")
    assert stream is not None and stream.get("url") == "wss://media-1.example.com/stream"
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params == {"token": CALL_TOKEN, "persona": "confirms"}


def test_machine_detection_is_only_sent_when_asked(
    fake_twilio: FakeTwilio, provider: TwilioProvider
) -> None:
    provider.place_call(dial_request(machine_detection=False))
    assert "MachineDetection" not in fake_twilio.received[0].form


def test_a_template_that_leaves_messages_waits_for_the_beep(
    fake_twilio: FakeTwilio, provider: TwilioProvider
) -> None:
    provider.place_call(dial_request(wait_for_beep=False))
    provider.place_call(dial_request(wait_for_beep=True))
    sent = [r.form.get("MachineDetection") for r in fake_twilio.received]
    assert sent == [["Enable"], ["DetectMessageEnd"]]


def test_twilio_environment_variables_do_not_redirect_requests(
    fake_twilio: FakeTwilio, provider: TwilioProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    with TwilioProvider(ACCOUNT_SID, AUTH_TOKEN, api_base_url=fake_twilio.base_url) as twilio:
        twilio.place_call(dial_request())
    assert [r.path for r in fake_twilio.received] == [CALLS_PATH]


def test_a_503_is_retryable(fake_twilio: FakeTwilio, provider: TwilioProvider) -> None:
    fake_twilio.answer(503, {"code": 20503, "message": "Service unavailable", "status": 503})
    with pytest.raises(ProviderUnavailable) as caught:
        provider.place_call(dial_request())
    assert caught.value.retryable and caught.value.status_code == 503
    assert not isinstance(caught.value, DialOutcomeUnknown)


def test_an_invalid_number_is_permanent(fake_twilio: FakeTwilio, provider: TwilioProvider) -> None:
    fake_twilio.answer(
        400,
        {"code": 21211, "message": f"The 'To' number {TO} is not valid.", "status": 400},
    )
    with pytest.raises(InvalidDestination) as caught:
        provider.place_call(dial_request())
    assert not caught.value.retryable
    assert caught.value.provider_code == 21211
    assert "4155550123" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_refused_connection_is_retryable_and_known_not_to_have_dialed() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with TwilioProvider(ACCOUNT_SID, AUTH_TOKEN, api_base_url=f"http://127.0.0.1:{port}") as tw:
        with pytest.raises(ProviderUnavailable) as caught:
            tw.place_call(dial_request())
    assert caught.value.retryable
    assert not isinstance(caught.value, DialOutcomeUnknown)


def test_a_dial_that_times_out_after_sending_is_of_unknown_outcome(
    fake_twilio: FakeTwilio,
) -> None:
    fake_twilio.answer(0, "stall")
    twilio = TwilioProvider(
        ACCOUNT_SID, AUTH_TOKEN, api_base_url=fake_twilio.base_url, request_timeout_s=0.2
    )
    with twilio, pytest.raises(DialOutcomeUnknown) as caught:
        twilio.place_call(dial_request())
    assert caught.value.retryable
    assert len(fake_twilio.received) == 1


def test_hang_up_completes_the_call(fake_twilio: FakeTwilio, provider: TwilioProvider) -> None:
    sid = "CA" + "b" * 32
    fake_twilio.answer(200, call_json(sid, status="completed"))
    provider.hang_up(sid)
    [request] = fake_twilio.received
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json"
    assert request.form == {"Status": ["completed"]}


def test_hanging_up_an_ended_call_is_fine(
    fake_twilio: FakeTwilio, provider: TwilioProvider
) -> None:
    sid = "CA" + "b" * 32
    fake_twilio.answer(400, {"code": 21220, "message": "Call is not in-progress", "status": 400})
    fake_twilio.answer(200, call_json(sid, status="completed"))
    provider.hang_up(sid)
    assert [r.method for r in fake_twilio.received] == ["POST", "GET"]


def test_a_refused_hang_up_of_a_live_call_is_raised(
    fake_twilio: FakeTwilio, provider: TwilioProvider
) -> None:
    sid = "CA" + "b" * 32
    fake_twilio.answer(400, {"code": 21220, "message": "Invalid call state", "status": 400})
    fake_twilio.answer(200, call_json(sid, status="in-progress"))
    with pytest.raises(ProviderRejected):
        provider.hang_up(sid)


def test_find_calls_asks_by_recipient_and_keeps_calls_since(
    fake_twilio: FakeTwilio, provider: TwilioProvider
) -> None:
    old, new = "CA" + "c" * 32, "CA" + "d" * 32
    fake_twilio.answer(
        200,
        {
            "calls": [
                call_json(new, status="ringing", created="Tue, 10 Aug 2010 08:02:17 +0000"),
                call_json(old, status="completed", created="Tue, 10 Aug 2010 07:00:00 +0000"),
            ],
            "next_page_uri": None,
            "page": 0,
            "page_size": 50,
            "uri": CALLS_PATH,
        },
    )
    since = datetime(2010, 8, 10, 8, 2, 17, 400_000, tzinfo=UTC)

    found = provider.find_calls(TO, since)

    assert [(c.call_sid, c.status) for c in found] == [(new, "ringing")]
    assert found[0].created_at == since.replace(microsecond=0)
    [request] = fake_twilio.received
    assert (request.method, request.path) == ("GET", CALLS_PATH)
    assert request.query["To"] == [TO]


def test_logs_hold_neither_secrets_nor_the_number(
    fake_twilio: FakeTwilio, provider: TwilioProvider
) -> None:
    with structlog.testing.capture_logs() as logs:
        provider.place_call(dial_request())
        fake_twilio.answer(500, {"code": 20500, "message": "oops", "status": 500})
        with pytest.raises(ProviderUnavailable):
            provider.place_call(dial_request())
    text = repr(logs)
    assert [entry["event"] for entry in logs] == ["call_placed", "twilio_request_failed"]
    for secret in (AUTH_TOKEN, CALL_TOKEN, "4155550123"):
        assert secret not in text


# --- options and the in-process provider ------------------------------------------------------


def test_options_never_print_the_auth_token(fake_twilio: FakeTwilio) -> None:
    options = ProviderOptions(
        kind="twilio",
        account_sid=ACCOUNT_SID,
        auth_token=SecretStr(AUTH_TOKEN),
        api_base_url=fake_twilio.base_url,
    )
    assert AUTH_TOKEN not in repr(options)
    twilio = provider_from_options(options)
    assert isinstance(twilio, TwilioProvider) and AUTH_TOKEN not in repr(twilio)
    twilio.close()


def test_twilio_options_need_credentials() -> None:
    with pytest.raises(ValueError):
        provider_from_options(ProviderOptions(kind="twilio"))
    assert isinstance(provider_from_options(ProviderOptions(kind="instant")), InstantProvider)


def test_instant_provider_fails_first_n_then_records_calls() -> None:
    instant = InstantProvider(
        fail_first_n=2, fail_with=lambda: ProviderRejected("nope", status_code=400)
    )
    for _ in range(2):
        with pytest.raises(ProviderRejected):
            instant.place_call(dial_request())
    placed = instant.place_call(dial_request())
    assert placed.call_sid.startswith("CA") and len(placed.call_sid) == 34
    assert instant.dial_attempts == 3
    assert [c.call_sid for c in instant.placed_calls] == [placed.call_sid]


def test_instant_provider_finds_and_hangs_up_its_calls() -> None:
    instant = InstantProvider()
    since = datetime.now(UTC) - timedelta(seconds=1)
    placed = instant.place_call(dial_request())
    instant.place_call(dial_request(to="+14155550124"))

    instant.hang_up(placed.call_sid)
    instant.hang_up(placed.call_sid)

    [found] = instant.find_calls(TO, since)
    assert (found.call_sid, found.status, found.ended) == (placed.call_sid, "completed", True)
    assert instant.find_calls(TO, datetime.now(UTC) + timedelta(hours=1)) == []
    with pytest.raises(ProviderRejected):
        instant.hang_up("CA" + "0" * 32)


def test_instant_provider_is_safe_across_threads() -> None:
    instant = InstantProvider()
    threads = [
        threading.Thread(target=lambda: [instant.place_call(dial_request()) for _ in range(50)])
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sids = {c.call_sid for c in instant.placed_calls}
    assert len(sids) == 400 and instant.dial_attempts == 400


@pytest.mark.parametrize(
    ("status", "retryable"), [(None, True), (500, True), (408, True), (429, True), (400, False)]
)
def test_the_root_error_decides_retry_from_its_status(status: int | None, retryable: bool) -> None:
    assert ProviderError("carrier said no", status_code=status).retryable is retryable
