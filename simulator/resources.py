"""Twilio's wire shapes for the Calls API: validating create/update forms and rendering call
JSON and list pages, error codes included (21211 bad To, 21212 bad From, ...)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from email.utils import format_datetime
from urllib.parse import urlencode, urlsplit

import phonenumbers

from simulator.callbacks import API_VERSION
from simulator.calls import Call, CallRequest
from simulator.errors import TwilioApiError, TwimlError
from simulator.twiml import Verb, parse_twiml

CALLBACK_EVENTS = frozenset({"initiated", "ringing", "answered", "completed"})
MACHINE_DETECTION = frozenset({"Enable", "DetectMessageEnd"})
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class Form:
    """Form fields (repeated names allowed) — aiohttp's MultiDict, or a plain mapping."""

    def __init__(self, items: Sequence[tuple[str, str]]) -> None:
        self._items = list(items)

    def get(self, name: str) -> str | None:
        return next((value for key, value in self._items if key == name), None)

    def getall(self, name: str) -> list[str]:
        return [value for key, value in self._items if key == name]


def _invalid(code: int, message: str) -> TwilioApiError:
    return TwilioApiError(400, code, message)


def _phone(value: str | None, field: str, missing: int, bad: int) -> str:
    if not value:
        raise _invalid(missing, f"A '{field}' phone number is required.")
    try:
        ok = bool(_E164.match(value)) and phonenumbers.is_possible_number(phonenumbers.parse(value))
    except phonenumbers.NumberParseException:
        ok = False
    if not ok:
        raise _invalid(bad, f"The '{field}' number {value} is not a valid phone number.")
    return value


def _http_url(value: str | None, name: str, code: int) -> str | None:
    if value is None or value == "":
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _invalid(code, f"{name} is not a valid URL: {value}")
    return value


def _method(value: str | None, name: str) -> str:
    method = (value or "POST").upper()
    if method not in ("GET", "POST"):
        raise _invalid(20001, f"{name} must be GET or POST")
    return method


def _twiml(value: str) -> tuple[Verb, ...]:
    try:
        return parse_twiml(value)
    except TwimlError as exc:
        raise _invalid(12100, f"Twiml is not valid: {exc}") from exc


def parse_create(form: Form) -> CallRequest:
    to = _phone(form.get("To"), "To", 21201, 21211)
    from_ = _phone(form.get("From"), "From", 21213, 21212)
    twiml, url = form.get("Twiml"), _http_url(form.get("Url"), "Url", 21205)
    if not twiml and not url:
        raise _invalid(21205, "Either Url, Twiml or ApplicationSid is required.")
    events = set(form.getall("StatusCallbackEvent"))
    if events - CALLBACK_EVENTS:
        raise _invalid(
            20001,
            f"StatusCallbackEvent must be among {sorted(CALLBACK_EVENTS)}, "
            f"got {sorted(events - CALLBACK_EVENTS)}",
        )
    timeout = form.get("Timeout") or "60"
    if not timeout.isdigit():
        raise _invalid(20001, f"Timeout must be an integer number of seconds: {timeout}")
    detection = form.get("MachineDetection") or None
    if detection is not None and detection not in MACHINE_DETECTION:
        raise _invalid(20001, f"MachineDetection must be Enable or DetectMessageEnd: {detection}")
    return CallRequest(
        to=to,
        from_=from_,
        verbs=_twiml(twiml) if twiml else None,
        url=None if twiml else url,
        method=_method(form.get("Method"), "Method"),
        status_callback=_http_url(form.get("StatusCallback"), "StatusCallback", 21609),
        status_callback_method=_method(form.get("StatusCallbackMethod"), "StatusCallbackMethod"),
        callback_events=frozenset(events),
        timeout_s=min(max(int(timeout), 1), 600),
        machine_detection=detection,
    )


def parse_update(form: Form) -> tuple[str | None, tuple[Verb, ...] | None]:
    """(`completed`/`canceled` or None, replacement TwiML or None)."""
    status = form.get("Status") or None
    if status is not None and status not in ("completed", "canceled"):
        raise _invalid(20001, f"Status must be completed or canceled, got {status}")
    twiml = form.get("Twiml")
    if status is None and not twiml:
        raise _invalid(20001, "Nothing to update: pass Status or Twiml")
    return status, _twiml(twiml) if twiml else None


def rfc2822(moment: datetime | None) -> str | None:
    return format_datetime(moment) if moment else None


def _formatted(number: str) -> str:
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return number
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


def calls_path(account_sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{account_sid}/Calls"


def call_json(call: Call) -> dict[str, object]:
    """The Call resource as Twilio renders it (durations are strings, dates RFC 2822)."""
    base = f"{calls_path(call.account_sid)}/{call.sid}"
    return {
        "sid": call.sid,
        "account_sid": call.account_sid,
        "annotation": None,
        "answered_by": call.answered_by,
        "api_version": API_VERSION,
        "caller_name": None,
        "date_created": rfc2822(call.created_at),
        "date_updated": rfc2822(call.updated_at),
        "direction": "outbound-api",
        "duration": None if call.duration_s is None else str(call.duration_s),
        "end_time": rfc2822(call.ended_at),
        "forwarded_from": None,
        "from": call.request.from_,
        "from_formatted": _formatted(call.request.from_),
        "group_sid": None,
        "parent_call_sid": None,
        "phone_number_sid": None,
        "price": None,
        "price_unit": "USD",
        "queue_time": "0",
        "start_time": rfc2822(call.started_at),
        "status": call.api_status.value,
        "to": call.request.to,
        "to_formatted": _formatted(call.request.to),
        "trunk_sid": None,
        "uri": f"{base}.json",
        "subresource_uris": {
            name: f"{base}/{resource}.json"
            for name, resource in (
                ("notifications", "Notifications"),
                ("recordings", "Recordings"),
                ("events", "Events"),
                ("streams", "Streams"),
                ("payments", "Payments"),
                ("siprec", "Siprec"),
                ("transcriptions", "Transcriptions"),
                ("user_defined_message_subscriptions", "UserDefinedMessageSubscriptions"),
                ("user_defined_messages", "UserDefinedMessages"),
            )
        },
    }


def _moment(value: str) -> datetime:
    """`YYYY-MM-DD` (midnight UTC) or ISO 8601 as the SDK sends it (`...T12:00:00Z`)."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _invalid(20001, f"Invalid date: {value}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def filter_calls(calls: Sequence[Call], query: Mapping[str, str]) -> list[Call]:
    """Apply To / From / Status / StartTime filters (`StartTime>` means on or after, as in
    Twilio); newest first. Calls not yet ringing have no start time and match no date filter."""
    after = _moment(query["StartTime>"]) if "StartTime>" in query else None
    before = _moment(query["StartTime<"]) if "StartTime<" in query else None
    on_day = _moment(query["StartTime"]).date() if "StartTime" in query else None
    wanted = []
    for call in calls:
        started = call.started_at
        if (
            ("To" in query and call.request.to != query["To"])
            or ("From" in query and call.request.from_ != query["From"])
            or ("Status" in query and call.api_status.value != query["Status"])
        ):
            continue
        if (after or before or on_day) and started is None:
            continue
        if started is not None and (
            (after and started < after)
            or (before and started > before)
            or (on_day and started.date() != on_day)
        ):
            continue
        wanted.append(call)
    return sorted(wanted, key=lambda c: c.created_at, reverse=True)


def page_json(
    account_sid: str, calls: Sequence[Call], query: Mapping[str, str]
) -> dict[str, object]:
    """One page in Twilio's envelope, with `next_page_uri` for the SDK to follow."""
    try:
        size = min(max(int(query.get("PageSize", "50")), 1), 1000)
        page = max(int(query.get("Page", "0")), 0)
    except ValueError as exc:
        raise _invalid(20001, "PageSize and Page must be integers") from exc
    filters = {k: v for k, v in query.items() if k not in ("PageSize", "Page", "PageToken")}
    path = f"{calls_path(account_sid)}.json"

    def uri(number: int) -> str:
        token = {"PageToken": f"PA{calls[number * size - 1].sid}"} if number > 0 else {}
        return f"{path}?{urlencode({**filters, 'PageSize': size, 'Page': number, **token})}"

    chunk = calls[page * size : (page + 1) * size]
    has_next = (page + 1) * size < len(calls)
    return {
        "calls": [call_json(call) for call in chunk],
        "start": page * size,
        "end": page * size + max(len(chunk) - 1, 0),
        "page": page,
        "page_size": size,
        "first_page_uri": uri(0),
        "uri": uri(page),
        "next_page_uri": uri(page + 1) if has_next else None,
        "previous_page_uri": uri(page - 1) if page > 0 else None,
    }
