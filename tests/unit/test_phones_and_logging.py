"""Phone parsing, masking in logs, and Redis keys that never hold a phone."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from shared import redis_keys
from shared.logging import configure_logging
from shared.phones import InvalidPhone, mask_phone, mask_phones_in, phone_digest, to_e164
from shared.settings import Settings


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+91 98123 45678", "+919812345678"),
        ("+1 (415) 555-0123", "+14155550123"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_valid_numbers_become_e164(raw: str, expected: str) -> None:
    assert to_e164(raw) == expected


@pytest.mark.parametrize("raw", ["12345", "hello", "+1 555 0000", "", "9812345678"])
def test_invalid_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        to_e164(raw)


def test_mask_keeps_only_prefix_and_last_two_digits() -> None:
    masked = mask_phone("+919812345678")
    assert masked.startswith("+919") and masked.endswith("78")
    assert "8123456" not in masked


def test_mask_phones_in_free_text() -> None:
    text = mask_phones_in("dialing +14155550123 from +442079460958 for order 1234")
    assert "4155550123" not in text and "2079460958" not in text
    assert "order 1234" in text


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-21T14:14:44.236Z",
        "lead d6179931-6bbd-41c0-9370-d7e54a144a34",
        "order KC-0001-003 took 1234 ms",
        "version 1.14.0",
    ],
)
def test_masking_leaves_dates_ids_and_numbers_alone(text: str) -> None:
    assert mask_phones_in(text) == text


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("call +91 98123 45678 now", "98123 45678"),
        ("national 9812345678.", "9812345678"),
        ("to=+14155550123", "4155550123"),
    ],
)
def test_masking_hides_phone_numbers(text: str, hidden: str) -> None:
    assert hidden not in mask_phones_in(text)


def test_redis_keys_hold_a_digest_not_the_phone() -> None:
    key = redis_keys.rate_window("m1", "+14155550123")
    assert "4155550123" not in key
    assert key.endswith(phone_digest("+14155550123"))
    assert phone_digest("+14155550123") != phone_digest("+14155550124")


def test_json_logs_mask_phones_and_keep_bound_context() -> None:
    out = io.StringIO()
    configure_logging(Settings(log_format="json"), stream=out)
    structlog.contextvars.bind_contextvars(lead_id="L1")
    try:
        structlog.get_logger("t").info("dialing", to="+14155550123", note="call +14155550123")
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.reset_defaults()
    line = json.loads(out.getvalue().strip().splitlines()[-1])
    assert line["lead_id"] == "L1"
    assert line["event"] == "dialing"
    assert "4155550123" not in json.dumps(line)
