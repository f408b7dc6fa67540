"""What a finished call's record adds to the fleet's metrics (turn latency, TTS failovers and
degraded providers), counted once, when finalization applies the record."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared.fleet_metrics import TTS_DEGRADED, TTS_FAILOVERS, TURN_LATENCY_SECONDS, FleetCounters


def count_call_record(counters: FleetCounters, events: Iterable[Any]) -> None:
    for event in events:
        if not isinstance(event, dict):
            continue
        kind, details = event.get("kind"), event.get("details") or {}
        if kind == "call_summary":
            for ms in details.get("turn_latencies_ms") or ():
                counters.observe(TURN_LATENCY_SECONDS, float(ms) / 1000)
        elif kind == "tts_failover":
            counters.inc(TTS_FAILOVERS, str(details.get("from")), str(details.get("to")))
        elif kind == "tts_provider_degraded":
            counters.inc(TTS_DEGRADED, str(details.get("provider")))
