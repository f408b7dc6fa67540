"""How tasks appear in Flower and Celery's own events: readable arguments with lead and attempt
ids, never a phone number, a payload or a transcript. Set on every message our producers
publish, through Celery's `argsrepr`/`kwargsrepr` headers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from celery.signals import before_task_publish

from shared.phones import mask_phones_in


def _ingest(args: Sequence[Any]) -> str:
    merchant_id, leads = args[0], args[1]
    return f"(merchant={merchant_id!r}, leads=<{len(leads)}>)"


def _finalize(args: Sequence[Any]) -> str:
    attempt_id, outcome, source = args[0], args[1], args[2]
    record = ", record=<call record>" if len(args) > 3 and args[3] else ""
    return f"(attempt={attempt_id!r}, outcome={outcome!r}, source={source!r}{record})"


def _call_status(args: Sequence[Any]) -> str:
    attempt_id, event = args[0], args[1]
    status = event.get("status") if isinstance(event, dict) else None
    return f"(attempt={attempt_id!r}, status={status!r})"


def _dispatch_ingested(args: Sequence[Any]) -> str:
    return f"(leads={list(args[0])!r})"


_DISPLAYS: dict[str, Callable[[Sequence[Any]], str]] = {
    "callfleet.ingest_leads": _ingest,
    "callfleet.finalize_attempt": _finalize,
    "callfleet.call_status": _call_status,
    "callfleet.dispatch_ingested": _dispatch_ingested,
}


def display_args(task_name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[str, str]:
    """(argsrepr, kwargsrepr) for one message. Unknown tasks keep their repr with any phone
    number masked; a message whose arguments do not have the expected shape says so."""
    display = _DISPLAYS.get(task_name)
    if display is None:
        return mask_phones_in(repr(tuple(args))), mask_phones_in(repr(kwargs))
    try:
        return display(args), "{}" if not kwargs else "<kwargs>"
    except (IndexError, KeyError, TypeError):
        return "<unexpected arguments>", "<kwargs>"


def _set_display(
    sender: str | None = None, headers: dict[str, Any] | None = None, body: Any = None, **_: Any
) -> None:
    # Protocol 2: headers carry the display strings, body is (args, kwargs, embed).
    if sender is None or headers is None or not isinstance(body, tuple | list) or len(body) < 2:
        return
    args, kwargs = body[0], body[1]
    headers["argsrepr"], headers["kwargsrepr"] = display_args(sender, args or (), kwargs or {})


def install() -> None:
    """Connect once per process; every Celery app in it then publishes readable arguments."""
    before_task_publish.connect(_set_display, dispatch_uid="callfleet.task_display", weak=False)
