"""Tasks the fleet sends and never waits on are sent with `ignore_result=True`: otherwise
Celery's Redis result backend subscribes to each one's result channel. Checked on the real
Celery app, with its broker publish replaced so that nothing reaches a queue."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from celery import Celery

from dispatcher.call_events import NextStep, send_follow_ups
from dispatcher.celery_factory import create_celery
from dispatcher.intake.announce import announce_due
from dispatcher.intake.store import IngestedRow
from dispatcher.tasks.dispatch import send_dispatches
from shared.enums import Outcome
from shared.settings import Settings


class Sends:
    def __init__(self) -> None:
        self.published: list[str] = []
        self.subscribed: list[str] = []


@pytest.fixture
def app_and_sends(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Celery, Sends]]:
    app = create_celery(settings)
    sends = Sends()

    def publish(producer: Any, name: str, message: Any, **options: Any) -> None:
        sends.published.append(name)

    monkeypatch.setattr(app.amqp, "send_task_message", publish)
    monkeypatch.setattr(
        app.backend, "on_task_call", lambda producer, task_id: sends.subscribed.append(task_id)
    )
    yield app, sends
    app.close()


NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SENDERS: dict[str, Callable[[Celery], None]] = {
    "dispatch": lambda app: send_dispatches(SimpleNamespace(app=app), [uuid.uuid4()]),  # type: ignore[arg-type]
    "dispatch_ingested": lambda app: announce_due(
        app, [IngestedRow(0, uuid.uuid4(), True, NOW)], NOW
    ),
    "hang_up": lambda app: send_follow_ups(
        app, uuid.uuid4(), "CA1", NextStep(hang_up=True), grace_s=5
    ),
    "finalize_now": lambda app: send_follow_ups(
        app, uuid.uuid4(), "CA1", NextStep(finalize_now=Outcome.NO_ANSWER), grace_s=5
    ),
    "finalize_later": lambda app: send_follow_ups(
        app, uuid.uuid4(), "CA1", NextStep(finalize_later=Outcome.NO_RESPONSE), grace_s=5
    ),
}


@pytest.mark.parametrize("sender", sorted(SENDERS))
def test_a_fire_and_forget_send_subscribes_to_no_result(
    app_and_sends: tuple[Celery, Sends], sender: str
) -> None:
    app, sends = app_and_sends
    SENDERS[sender](app)
    assert len(sends.published) == 1
    assert sends.subscribed == []


def test_a_send_that_does_not_ignore_its_result_would_subscribe(
    app_and_sends: tuple[Celery, Sends],
) -> None:
    app, sends = app_and_sends  # the patched publish, as above, against Celery's default
    app.send_task("callfleet.dispatch", args=["x"])
    assert len(sends.published) == 1 and len(sends.subscribed) == 1
