"""Calling windows in the recipient's local time: boundaries, DST, multi-zone numbers."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dispatcher.admission import window as window_module
from dispatcher.admission.backoff import capacity_backoff_s
from dispatcher.admission.window import is_open, next_opening, recipient_zones
from shared.phones import time_zones_of
from shared.templates import CallingWindow

WEEKDAYS_9_TO_18 = CallingWindow(
    days=["mon", "tue", "wed", "thu", "fri"], start="09:00", end="18:00"
)
KOLKATA = ZoneInfo("Asia/Kolkata")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_open_inside_window_returns_now() -> None:
    now = utc(2026, 11, 23, 6, 0)  # Monday 11:30 in Kolkata
    assert next_opening(WEEKDAYS_9_TO_18, now, [KOLKATA]) == now


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 08:59:59 local -> opens one second later
        (utc(2026, 11, 23, 3, 29, 59), utc(2026, 11, 23, 3, 30)),
        # 18:00 local is closed (end exclusive) -> Tuesday 09:00
        (utc(2026, 11, 23, 12, 30), utc(2026, 11, 24, 3, 30)),
        # Friday evening -> Monday 09:00
        (utc(2026, 11, 27, 13, 0), utc(2026, 11, 30, 3, 30)),
    ],
)
def test_window_edges(now: datetime, expected: datetime) -> None:
    assert next_opening(WEEKDAYS_9_TO_18, now, [KOLKATA]) == expected


def test_start_is_inclusive() -> None:
    assert is_open(WEEKDAYS_9_TO_18, utc(2026, 11, 23, 3, 30), [KOLKATA])
    assert not is_open(WEEKDAYS_9_TO_18, utc(2026, 11, 23, 3, 29, 59), [KOLKATA])


def test_no_window_means_any_time() -> None:
    now = utc(2026, 11, 22, 2, 0)
    assert next_opening(None, now, [KOLKATA]) == now


def test_dst_spring_forward_keeps_local_nine() -> None:
    # US DST starts Sunday 2027-03-14; Monday 09:00 EDT is 13:00 UTC, not 14:00.
    friday_evening = utc(2027, 3, 12, 23, 0)
    assert next_opening(WEEKDAYS_9_TO_18, friday_evening, [NEW_YORK]) == utc(2027, 3, 15, 13, 0)


def test_dst_fall_back_keeps_local_nine() -> None:
    # US DST ends Sunday 2026-11-01; Monday 09:00 EST is 14:00 UTC.
    friday_evening = utc(2026, 10, 30, 23, 0)
    assert next_opening(WEEKDAYS_9_TO_18, friday_evening, [NEW_YORK]) == utc(2026, 11, 2, 14, 0)


def test_window_inside_the_dst_gap_moves_to_the_next_day() -> None:
    gap_window = CallingWindow(days=["sun", "mon"], start="02:00", end="02:30")
    saturday = utc(2027, 3, 13, 12, 0)
    opening = next_opening(gap_window, saturday, [NEW_YORK])
    assert opening is not None
    assert opening.astimezone(NEW_YORK).date().isoformat() == "2027-03-15"
    assert opening.astimezone(NEW_YORK).hour == 2


def test_multi_zone_number_waits_for_every_zone() -> None:
    zones = [NEW_YORK, ZoneInfo("America/Los_Angeles")]
    monday_9_new_york = utc(2026, 11, 23, 14, 0)
    opening = next_opening(WEEKDAYS_9_TO_18, monday_9_new_york, zones)
    assert opening == utc(2026, 11, 23, 17, 0)  # 09:00 in Los Angeles


def test_zones_never_overlapping_gives_none() -> None:
    narrow = CallingWindow(days=["mon"], start="09:00", end="10:00")
    assert next_opening(narrow, utc(2026, 11, 23, 0, 0), [KOLKATA, NEW_YORK]) is None


def test_recipient_zone_resolution_order() -> None:
    assert recipient_zones("Europe/Paris", "+919812345678", "UTC") == [ZoneInfo("Europe/Paris")]
    [india] = recipient_zones(None, "+919812345678", "UTC")  # phonenumbers says Asia/Calcutta
    assert india.utcoffset(datetime(2026, 1, 1)) == timedelta(hours=5, minutes=30)
    assert recipient_zones(None, "+442079460958", "UTC") == [ZoneInfo("Europe/London")]
    # A non-geographic number falls back to the merchant default.
    assert recipient_zones(None, "+882345678901", "Asia/Dubai") == [ZoneInfo("Asia/Dubai")]


def test_zones_stored_at_intake_are_used_without_a_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_lookup(e164: str) -> list[str]:
        raise AssertionError("looked up a number whose zones were stored")

    monkeypatch.setattr(window_module, "time_zones_of", no_lookup)
    stored = ["America/New_York", "America/Chicago"]
    assert recipient_zones(None, "+919812345678", "UTC", stored) == [ZoneInfo(z) for z in stored]
    # Stored as none known: the merchant default, still without a lookup.
    assert recipient_zones(None, "+919812345678", "Asia/Dubai", []) == [ZoneInfo("Asia/Dubai")]


def test_intake_stores_the_zones_admission_would_look_up() -> None:
    assert time_zones_of("+919812345678") == ["Asia/Calcutta"]
    assert time_zones_of("+882345678901") == []


def test_backoff_grows_is_capped_and_jittered() -> None:
    rng = random.Random(7)
    samples = [
        capacity_backoff_s(n, base_s=2, cap_s=60, rng=rng) for n in range(12) for _ in range(50)
    ]
    assert max(samples) <= 60
    assert min(samples) >= 1
    early = [capacity_backoff_s(0, base_s=2, cap_s=60, rng=rng) for _ in range(200)]
    late = [capacity_backoff_s(10, base_s=2, cap_s=60, rng=rng) for _ in range(200)]
    assert max(early) <= 2 < max(late)
    assert len({round(x, 3) for x in late}) > 100  # jittered, not lockstep
    assert timedelta(seconds=max(late)) <= timedelta(seconds=60)
