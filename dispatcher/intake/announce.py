"""After intake commits, leads that are already due are handed to dispatch at once rather
than waiting for the next sweep (the sweep still catches any whose message is lost)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from dispatcher.intake.store import IngestedRow


class TaskSender(Protocol):
    """A Celery app. Its senders pass `ignore_result=True`: no one waits on these tasks, and
    without it Celery's Redis result backend subscribes to each task's result channel (and
    unsubscribes when the unused result is collected), two Redis commands per task."""

    def send_task(self, name: str, args: Sequence[Any] | None = None, **options: Any) -> Any: ...


def announce_due(sender: TaskSender | None, rows: Sequence[IngestedRow], now: datetime) -> int:
    due = [
        str(row.id)
        for row in rows
        if row.created and row.next_attempt_at is not None and row.next_attempt_at <= now
    ]
    if sender is not None and due:
        sender.send_task("callfleet.dispatch_ingested", args=[due], ignore_result=True)
    return len(due)
