"""Webhooks as Twilio sends them: its parameters, form-encoded, signed with
`X-Twilio-Signature`. Status callbacks go out in order, one queue and worker per call, with
the duplicate / reorder knobs applied on the way."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
import phonenumbers
import structlog
from yarl import URL

from simulator.calls import Call, CallStatus
from simulator.faults import Faults
from simulator.report import CallbackRecord

log = structlog.get_logger(__name__)

API_VERSION = "2010-04-01"
_SIP_CODES = {
    CallStatus.COMPLETED: "200",
    CallStatus.BUSY: "486",
    CallStatus.NO_ANSWER: "487",
    CallStatus.CANCELED: "487",
    CallStatus.FAILED: "500",
}


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """base64(HMAC-SHA1(auth token, URL + each POST name and value, sorted by name)). For a
    GET the query string is already in `url` and `params` is empty."""
    payload = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signed_request(
    auth_token: str, method: str, url: str, params: Mapping[str, str]
) -> tuple[str, dict[str, str] | None, dict[str, str]]:
    """(url, form body or None, headers) for a webhook request the way Twilio makes it.
    Send the URL verbatim (`yarl.URL(url, encoded=True)`): the signature covers its bytes."""
    headers = {"User-Agent": "TwilioProxy/1.1", "Accept": "*/*"}
    if method == "GET":
        parts = urlsplit(url)
        query = "&".join(filter(None, (parts.query, urlencode(params))))
        full = urlunsplit(parts._replace(query=query))
        headers["X-Twilio-Signature"] = twilio_signature(auth_token, full, ())
        return full, None, headers
    headers["X-Twilio-Signature"] = twilio_signature(auth_token, url, params.items())
    return url, dict(params), headers


def _country(number: str) -> str:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(number)) or ""
    except phonenumbers.NumberParseException:
        return ""


def request_params(call: Call, status: CallStatus) -> dict[str, str]:
    """The parameters Twilio puts on every voice webhook for an outbound API call."""
    params = {
        "AccountSid": call.account_sid,
        "ApiVersion": API_VERSION,
        "CallSid": call.sid,
        "CallStatus": status.value,
        "Called": call.request.to,
        "Caller": call.request.from_,
        "Direction": "outbound-api",
        "From": call.request.from_,
        "To": call.request.to,
        "FromCountry": _country(call.request.from_),
        "ToCountry": _country(call.request.to),
    }
    if call.request.machine_detection and call.answered_by:
        params["AnsweredBy"] = call.answered_by
    return params


def status_params(call: Call, status: CallStatus, sequence: int) -> dict[str, str]:
    params = request_params(call, status)
    params["CallbackSource"] = "call-progress-events"
    params["SequenceNumber"] = str(sequence)
    params["Timestamp"] = format_datetime(datetime.now(UTC))
    if status.is_final:
        params["SipResponseCode"] = _SIP_CODES[status]
        if status is CallStatus.COMPLETED:
            seconds = call.duration_s or 0
            params["CallDuration"] = str(seconds)
            params["Duration"] = str(math.ceil(seconds / 60))
    return params


class CallbackSender:
    """Queues each call's status callbacks and posts them in order from one worker task."""

    def __init__(
        self, http: aiohttp.ClientSession, auth_token: str, faults: Faults, timeout_s: float
    ) -> None:
        self._http = http
        self._token = auth_token
        self._faults = faults
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._queues: dict[str, asyncio.Queue[tuple[dict[str, str], CallbackRecord] | None]] = {}
        self._workers: set[asyncio.Task[None]] = set()

    def emit(self, call: Call, status: CallStatus) -> None:
        """Send `status` if the call subscribed to it (the final one always goes)."""
        url = call.request.status_callback
        if not url or (
            not status.is_final and status.callback_event not in call.request.callback_events
        ):
            return
        record = CallbackRecord(sequence=call.callback_sequence, status=status.value)
        params = status_params(call, status, call.callback_sequence)
        call.callback_sequence += 1
        call.report.callbacks.append(record)
        queue = self._queues.get(call.sid)
        if queue is None:
            queue = self._queues[call.sid] = asyncio.Queue()
            worker = asyncio.create_task(self._drain(call, queue), name=f"callbacks-{call.sid}")
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        queue.put_nowait((params, record))
        if status.is_final:
            queue.put_nowait(None)
            del self._queues[call.sid]

    async def close(self) -> None:
        for worker in list(self._workers):
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def _drain(
        self, call: Call, queue: asyncio.Queue[tuple[dict[str, str], CallbackRecord] | None]
    ) -> None:
        held: tuple[dict[str, str], CallbackRecord] | None = None
        while (item := await queue.get()) is not None:
            if self._faults.reorder_callbacks and held is None:
                held = item  # goes out after the next one
                continue
            await self._send(call, *item)
            if held is not None:
                await self._send(call, *held)
                held = None
        if held is not None:
            await self._send(call, *held)

    async def _send(self, call: Call, params: dict[str, str], record: CallbackRecord) -> None:
        copies = 2 if self._faults.duplicate_callbacks else 1
        for _ in range(copies):
            record.deliveries.append(await self._post(call, params))

    async def _post(self, call: Call, params: dict[str, str]) -> str:
        method = call.request.status_callback_method
        url, body, headers = signed_request(
            self._token, method, call.request.status_callback or "", params
        )
        try:
            async with self._http.request(
                method,
                URL(url, encoded=True),
                data=body,
                headers=headers,
                timeout=self._timeout,
            ) as response:
                await response.read()
                if response.status >= 400:
                    log.warning(
                        "status_callback_rejected",
                        call_sid=call.sid,
                        http_status=response.status,
                        status=params["CallStatus"],
                    )
                return str(response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning(
                "status_callback_failed",
                call_sid=call.sid,
                error=repr(exc),
                status=params["CallStatus"],
            )
            return f"error: {type(exc).__name__}"
