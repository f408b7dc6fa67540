"""What Flower shows of our tasks: the argsrepr our producers put on real messages in the
Redis broker carries lead and attempt ids, never a phone number or a call record."""

from __future__ import annotations

import json
from typing import Any

import redis

from dispatcher.celery_factory import create_celery
from dispatcher.task_display import display_args
from shared.settings import Settings

PHONE = "+919812345678"


def _published(redis_client: redis.Redis, queue: str) -> dict[str, Any]:
    [raw] = redis_client.lrange(queue, 0, -1)
    message: dict[str, Any] = json.loads(raw)
    return message["headers"]


def test_ingest_messages_show_the_merchant_and_a_count(
    settings: Settings, redis_client: redis.Redis
) -> None:
    app = create_celery(settings)
    leads = [{"phone": PHONE, "template": "t", "payload": {"note": f"call {PHONE}"}}] * 2
    app.send_task("callfleet.ingest_leads", args=["m-1", leads])
    headers = _published(redis_client, "ingest")
    assert headers["argsrepr"] == "(merchant='m-1', leads=<2>)"
    assert "98123" not in json.dumps(headers)


def test_finalize_messages_hide_the_call_record(
    settings: Settings, redis_client: redis.Redis
) -> None:
    app = create_celery(settings)
    record = {"transcript": [{"role": "customer", "text": f"my number is {PHONE}"}]}
    app.send_task("callfleet.finalize_attempt", args=["a-1", "CONFIRMED", "conversation", record])
    headers = _published(redis_client, "call_events")
    assert headers["argsrepr"] == (
        "(attempt='a-1', outcome='CONFIRMED', source='conversation', record=<call record>)"
    )


def test_other_tasks_keep_their_arguments_with_phones_masked() -> None:
    assert display_args("callfleet.dispatch", ["lead-1"], {}) == ("('lead-1',)", "{}")
    argsrepr, _ = display_args("callfleet.some_future_task", [PHONE], {})
    assert PHONE not in argsrepr and argsrepr.startswith("('+919")


def test_unexpected_argument_shapes_are_labelled_not_shown() -> None:
    assert display_args("callfleet.call_status", [], {}) == ("<unexpected arguments>", "<kwargs>")
