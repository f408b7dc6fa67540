"""Calling-window arithmetic in the recipient's local time: pure functions, no I/O.

A number whose region spans several time zones (some US area codes, say) is treated
conservatively: a call may start only when the window is open in every one of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.phones import time_zones_of
from shared.templates import CallingWindow

_SEARCH_DAYS = 8


def recipient_zones(
    lead_timezone: str | None,
    e164: str,
    merchant_default: str,
    number_zones: Sequence[str] | None = None,
) -> list[ZoneInfo]:
    """The lead's own zone, else the number's zones (`number_zones` as intake stored them;
    looked up when absent, for leads stored before intake did), else the merchant's default."""
    if lead_timezone:
        return [ZoneInfo(lead_timezone)]
    names = time_zones_of(e164) if number_zones is None else number_zones
    zones = []
    for name in names:
        try:
            zones.append(ZoneInfo(name))
        except ZoneInfoNotFoundError:
            continue
    return zones or [ZoneInfo(merchant_default)]


def is_open(window: CallingWindow | None, at: datetime, zones: Sequence[ZoneInfo]) -> bool:
    if window is None:
        return True
    return all(window.is_open_at(at.astimezone(zone)) for zone in zones)


def _next_local_opening(window: CallingWindow, after: datetime, zone: ZoneInfo) -> datetime:
    """The first instant >= `after` at which the window opens (or is open) in `zone`."""
    local = after.astimezone(zone)
    if window.is_open_at(local):
        return after
    for offset in range(_SEARCH_DAYS):
        day = (local + timedelta(days=offset)).date()
        if day.weekday() not in window.weekday_numbers:
            continue
        # A start inside a DST gap resolves past the jump; if the whole window falls in
        # the gap that day it is not open, and the search moves on to the next day.
        opening = datetime.combine(day, window.start_time, tzinfo=zone).astimezone(UTC)
        if opening >= after and is_open(window, opening, [zone]):
            return opening
    return after + timedelta(days=_SEARCH_DAYS)


def next_opening(
    window: CallingWindow | None, now: datetime, zones: Sequence[ZoneInfo]
) -> datetime | None:
    """`now` if calls may start now, else the next instant the window is open in every zone;
    None if no such instant exists within a week (zones whose windows never overlap)."""
    candidate = now
    for _ in range(len(zones) * _SEARCH_DAYS * 2):
        if is_open(window, candidate, zones):
            return candidate
        assert window is not None
        candidate = max(_next_local_opening(window, candidate, zone) for zone in zones)
        if candidate - now > timedelta(days=_SEARCH_DAYS):
            return None
    return None
