"""The demo's closing report on one run's leads: outcomes, attempts and retries, deferrals by
reason, turn latency percentiles, TTS failovers and agent routes, read from PostgreSQL (the
attempts' call records) and the fleet's dispatch counters."""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db.models import CallAttempt, Lead


@dataclass
class RunReport:
    leads: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    attempts: int = 0
    retried_leads: int = 0
    attempt_outcomes: Counter[str] = field(default_factory=Counter)
    deferrals: Counter[str] = field(default_factory=Counter)
    turn_latencies_ms: list[int] = field(default_factory=list)
    tts_failovers: Counter[str] = field(default_factory=Counter)
    routes: Counter[str] = field(default_factory=Counter)
    tts_speakers: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        out = [f"leads: {self.leads}  ({_counts(self.statuses)})"]
        out.append(f"outcomes: {_counts(self.outcomes) or 'none finished yet'}")
        out.append(
            f"attempts: {self.attempts} for {self.leads} leads; {self.retried_leads} leads "
            f"retried; attempt outcomes: {_counts(self.attempt_outcomes) or '-'}"
        )
        out.append(f"deferrals by reason: {_counts(self.deferrals) or 'none'}")
        if self.turn_latencies_ms:
            ordered = sorted(self.turn_latencies_ms)
            out.append(
                f"turn latency over {len(ordered)} turns: p50 {_rank(ordered, 50)} ms, "
                f"p95 {_rank(ordered, 95)} ms, max {ordered[-1]} ms"
            )
        else:
            out.append("turn latency: no turns measured")
        out.append(f"agent utterances by TTS provider: {_counts(self.tts_speakers) or '-'}")
        out.append(f"TTS failovers: {_counts(self.tts_failovers) or 'none'}")
        out.append(f"agent routes: {_counts(self.routes) or 'none'}")
        return out


def _counts(counter: Mapping[str, int]) -> str:
    return ", ".join(f"{key} {n}" for key, n in sorted(counter.items(), key=lambda kv: -kv[1]))


def _rank(ordered: list[int], percent: float) -> int:
    return ordered[max(1, math.ceil(percent / 100 * len(ordered))) - 1]


def build_report(
    session: Session, lead_ids: Iterable[uuid.UUID], deferrals: Mapping[str, int]
) -> RunReport:
    """`deferrals`: deferred dispatches by reason during the run (the fleet counters' change)."""
    ids = list(lead_ids)
    report = RunReport(leads=len(ids), deferrals=Counter(dict(deferrals)))
    leads = session.execute(select(Lead.status, Lead.outcome).where(Lead.id.in_(ids))).all()
    for status, outcome in leads:
        report.statuses[str(status)] += 1
        if outcome is not None:
            report.outcomes[str(outcome)] += 1
    attempts = session.execute(
        select(CallAttempt.lead_id, CallAttempt.outcome, CallAttempt.events).where(
            CallAttempt.lead_id.in_(ids)
        )
    ).all()
    per_lead: Counter[uuid.UUID] = Counter()
    for lead_id, outcome, events in attempts:
        report.attempts += 1
        per_lead[lead_id] += 1
        if outcome is not None:
            report.attempt_outcomes[str(outcome)] += 1
        _read_events(report, events or [])
    report.retried_leads = sum(1 for n in per_lead.values() if n > 1)
    return report


def _read_events(report: RunReport, events: list[Any]) -> None:
    for event in events:
        if not isinstance(event, dict):
            continue
        kind, details = event.get("kind"), event.get("details") or {}
        if kind == "call_summary":
            report.turn_latencies_ms.extend(int(ms) for ms in details.get("turn_latencies_ms", []))
            for utterance in details.get("utterances", []):
                if isinstance(utterance, dict) and utterance.get("tts_provider"):
                    report.tts_speakers[str(utterance["tts_provider"])] += 1
        elif kind == "tts_failover":
            report.tts_failovers[f"{details.get('from')} -> {details.get('to')}"] += 1
        elif kind == "agent_switched":
            report.routes[f"{details.get('from')} -> {details.get('to')}"] += 1


def deferral_counts(dispatch_counts: Mapping[tuple[str, str], float]) -> dict[str, int]:
    """Deferred dispatches by reason from the fleet's `callfleet_dispatches` counter values."""
    return {
        reason: int(n) for (action, reason), n in dispatch_counts.items() if action == "deferred"
    }
