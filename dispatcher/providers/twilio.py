"""`TwilioProvider`: dials through Twilio's REST API (or anything that speaks it, such as the
simulator at a custom API base URL) and maps every failure onto the provider error tree."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Self, TypeVar

import requests
import structlog
from twilio.base.exceptions import (
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import Connect, Stream, VoiceResponse
from urllib3.exceptions import NewConnectionError

from dispatcher.providers.base import (
    FINAL_CALL_STATUSES,
    DialOutcomeUnknown,
    DialRequest,
    FoundCall,
    PlacedCall,
    ProviderError,
    ProviderUnavailable,
    error_for_response,
)
from shared.phones import mask_phone, mask_phones_in

log = structlog.get_logger(__name__)

STATUS_CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")
# A recipient is rate limited to a handful of dials per hour, so one page covers any
# realistic reconciliation window.
FIND_CALLS_LIMIT = 50
# Gateway answers: Twilio's edge gave up waiting, the dial may still have been created.
_AMBIGUOUS_STATUSES = frozenset({502, 504})

_T = TypeVar("_T")


def stream_twiml(stream_url: str, parameters: Mapping[str, str]) -> str:
    """`<Response><Connect><Stream url=…><Parameter …/></Stream></Connect></Response>`,
    escaped by the SDK's XML writer."""
    stream = Stream(url=stream_url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    connect = Connect()
    connect.append(stream)
    response = VoiceResponse()
    response.append(connect)
    twiml: str = response.to_xml()
    return twiml


class _QuietHttpClient(TwilioHttpClient):  # type: ignore[misc]  # the SDK is untyped
    """The SDK's client logs every request URL and its query at info, which would print the
    recipient's number from `calls.list(to=…)`; this provider logs its own masked events."""

    def log_request(self, kwargs: dict[str, Any]) -> None:
        pass

    def log_response(self, status_code: int, response: Any) -> None:
        pass


class TwilioProvider:
    """Synchronous (the SDK uses requests); meant for Celery workers, not event loops."""

    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        api_base_url: str | None = None,
        request_timeout_s: float = 10,
    ) -> None:
        # Credentials are passed explicitly; `environment` would otherwise fall back to the
        # process environment, which library code never reads.
        self._client = Client(
            account_sid,
            auth_token,
            http_client=_QuietHttpClient(
                timeout=request_timeout_s, logger=logging.getLogger(__name__)
            ),
        )
        # The SDK picks edge/region up from TWILIO_EDGE/TWILIO_REGION and rewrites hostnames
        # with them; configuration comes from our arguments only.
        self._client.edge = None
        self._client.region = None
        if api_base_url:
            # Every v2010 resource (and its paging links) is built from the `api` domain's
            # base URL, so this moves calls.create/update/fetch/list to the new origin.
            self._client.api.base_url = api_base_url.rstrip("/")
        self._account_sid = account_sid
        self._api_base_url = api_base_url

    def close(self) -> None:
        """Release pooled HTTP connections (worker shutdown, tests)."""
        session = self._client.http_client.session
        if session is not None:
            session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TwilioProvider(account_sid={self._account_sid!r}, api={self._api_base_url!r})"

    def place_call(self, request: DialRequest) -> PlacedCall:
        options: dict[str, Any] = {
            "to": request.to,
            "from_": request.from_,
            "twiml": stream_twiml(request.stream_url, request.stream_parameters),
            "status_callback": request.status_callback_url,
            "status_callback_event": list(STATUS_CALLBACK_EVENTS),
            "status_callback_method": "POST",
            "timeout": request.ring_timeout_s,
        }
        if request.machine_detection:
            options["machine_detection"] = "DetectMessageEnd" if request.wait_for_beep else "Enable"
        call = self._call("place_call", lambda: self._client.calls.create(**options), dial=True)
        call_sid = str(call.sid)
        log.info("call_placed", call_sid=call_sid, to=mask_phone(request.to))
        return PlacedCall(call_sid=call_sid, provider=self.name)

    def hang_up(self, call_sid: str) -> None:
        try:
            self._call("hang_up", lambda: self._client.calls(call_sid).update(status="completed"))
        except ProviderError as exc:
            # Ending an ended call is refused with a 4xx whose code varies; the call's own
            # status is the reliable answer to "is it over?".
            if exc.retryable or exc.status_code in (401, 403, 404):
                raise
            status = self._call("fetch_call", lambda: self._client.calls(call_sid).fetch()).status
            if str(status) not in FINAL_CALL_STATUSES:
                raise
        log.info("call_hung_up", call_sid=call_sid)

    def find_calls(self, to: str, since: datetime) -> list[FoundCall]:
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        # No filter on creation time exists (StartTime is empty until a call is dialed), so
        # filter by recipient on the server and by creation time here.
        calls = self._call(
            "find_calls", lambda: self._client.calls.list(to=to, limit=FIND_CALLS_LIMIT)
        )
        # Twilio reports whole seconds; compare at that precision or a call created in the
        # same second as `since` would be missed.
        since_s = since.replace(microsecond=0)
        found = [
            FoundCall(
                call_sid=str(call.sid),
                status=str(call.status),
                start_time=call.start_time,
                created_at=call.date_created,
            )
            for call in calls
            if call.date_created is None or call.date_created >= since_s
        ]
        found.sort(key=lambda c: c.created_at or since_s, reverse=True)
        log.info("calls_found", to=mask_phone(to), count=len(found))
        return found

    def _call(self, operation: str, action: Callable[[], _T], *, dial: bool = False) -> _T:
        """Run one SDK request; every failure leaves as a `ProviderError`, never chained to
        the SDK's exception, whose text echoes request URLs with phone numbers."""
        try:
            return action()
        except TwilioException as exc:
            error = error_from_twilio(exc, dial=dial)
        except requests.RequestException as exc:
            error = _from_transport_error(exc, dial=dial)
        except json.JSONDecodeError:
            # A 2xx with an unreadable body: for a dial, it may well have been created.
            error = (DialOutcomeUnknown if dial else ProviderUnavailable)(
                "twilio answered with an unreadable body"
            )
        log.warning(
            "twilio_request_failed",
            operation=operation,
            error=type(error).__name__,
            status_code=error.status_code,
            provider_code=error.provider_code,
            retryable=error.retryable,
        )
        raise error from None


def error_from_twilio(exc: TwilioException, *, dial: bool = False) -> ProviderError:
    """Map an SDK exception to the error tree; `dial` marks a `calls.create`, for which a
    gateway error (502/504) leaves the dial's fate unknown."""
    status, code, text = _status_code_text(exc)
    if status is None:
        return ProviderUnavailable(f"twilio client error: {mask_phones_in(text)}")
    message = f"twilio {status}" + (f" code {code}" if code else "")
    message += f": {mask_phones_in(text)}"
    if dial and status in _AMBIGUOUS_STATUSES:
        return DialOutcomeUnknown(message, status_code=status, provider_code=code)
    return error_for_response(status, code, message)


def _status_code_text(exc: TwilioException) -> tuple[int | None, int | None, str]:
    if isinstance(exc, TwilioRestException):
        return int(exc.status), _twilio_code(exc.code), str(exc.msg)
    if isinstance(exc, TwilioServiceException):
        return int(exc.status), _twilio_code(exc.code), str(exc.detail or exc.title)
    # A list page that is not a 200 arrives as a bare TwilioException(message, response).
    response = exc.args[1] if len(exc.args) > 1 else None
    status = getattr(response, "status_code", None)
    if not isinstance(status, int):
        return None, None, str(exc.args[0]) if exc.args else type(exc).__name__
    try:
        body = json.loads(str(getattr(response, "text", "")))
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return status, _twilio_code(body.get("code")), str(body.get("message", exc.args[0]))


def _twilio_code(code: object) -> int | None:
    # Without a JSON body the SDK puts the HTTP status where the Twilio code goes; Twilio's
    # own codes are five digits.
    return code if isinstance(code, int) and code >= 10000 else None


def _from_transport_error(exc: requests.RequestException, *, dial: bool) -> ProviderError:
    kind = type(exc).__name__
    if _never_sent(exc) or not dial:
        return ProviderUnavailable(f"twilio unreachable ({kind})")
    return DialOutcomeUnknown(f"twilio request interrupted after sending ({kind})")


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the failure happened before the request could reach Twilio."""
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
        return True
    if isinstance(exc, requests.exceptions.ProxyError | requests.exceptions.InvalidURL):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)
