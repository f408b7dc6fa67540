"""What the chaos suite measures after a fault: leads, attempts, the carrier's record of placed
calls and what Redis still holds, checked against the recovery invariants and printed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shared import redis_keys
from shared.db.models import CallAttempt, Lead
from shared.enums import LeadStatus
from simulator.settings import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN

# What the `record_counts` fixture hands a test: (scenario, snapshot, seconds to recover).
Recorder = Callable[[str, "Snapshot", float | None], None]
SETTLED = (LeadStatus.FINISHED, LeadStatus.SCHEDULED)
# A lead scheduled further out than this waits for its retry policy (an hour in the template),
# not for the fleet to get round to it: it is settled for the suite's purposes.
STILL_DUE_WITHIN = timedelta(seconds=60)


@dataclass
class Snapshot:
    """One look at the whole fleet; `violations()` lists every broken invariant."""

    leads_submitted: int
    leads_by_status: Counter[str] = field(default_factory=Counter)
    lead_outcomes: Counter[str] = field(default_factory=Counter)
    attempts: int = 0
    attempts_unfinalized: int = 0
    attempt_outcomes: Counter[str] = field(default_factory=Counter)
    abandoned_attempts: int = 0  # ended by dispatch or the reconciler with no call placed
    sim_calls: int = 0
    sim_active_calls: int = 0
    calls_owned: int = 0  # placed calls whose SID is on an attempt of the lead dialed
    orphan_calls: list[str] = field(default_factory=list)  # placed, owned by no attempt
    channel_tokens_held: int = 0
    media_reservations_held: int = 0
    scheduled_without_time: int = 0
    scheduled_due_soon: int = 0  # deferred for seconds (capacity, requeue): still being worked

    @property
    def leads_seen(self) -> int:
        return sum(self.leads_by_status.values())

    @property
    def settled(self) -> bool:
        """Nothing in flight: every lead finished or scheduled, every attempt finalized, no
        live call at the carrier and nothing held in Redis."""
        return not self.violations()

    def violations(self) -> list[str]:
        problems = []
        if self.leads_seen != self.leads_submitted:
            problems.append(f"leads lost: {self.leads_submitted} submitted, {self.leads_seen} seen")
        unsettled = {s: n for s, n in self.leads_by_status.items() if s not in SETTLED}
        if unsettled:
            problems.append(f"leads neither finished nor scheduled: {unsettled}")
        if self.scheduled_due_soon:
            problems.append(f"leads not yet dialed to an end: {self.scheduled_due_soon}")
        if self.scheduled_without_time:
            problems.append(f"scheduled leads with no next attempt: {self.scheduled_without_time}")
        if self.attempts_unfinalized:
            problems.append(f"attempts not finalized: {self.attempts_unfinalized}")
        if self.orphan_calls:
            # A placed call no attempt owns is a second dial for one (or a dial without one).
            problems.append(f"calls no attempt owns (a second dial): {len(self.orphan_calls)}")
        if self.sim_active_calls:
            problems.append(f"calls still live at the carrier: {self.sim_active_calls}")
        if self.channel_tokens_held:
            problems.append(f"channel tokens leaked: {self.channel_tokens_held}")
        if self.media_reservations_held:
            problems.append(f"media reservations leaked: {self.media_reservations_held}")
        return problems

    def report(
        self, scenario: str, recovered_s: float | None, actions: dict[str, int] | None = None
    ) -> str:
        took = "not recovered" if recovered_s is None else f"recovered in {recovered_s:.1f} s"
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(self.leads_by_status.items()))
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(self.lead_outcomes.items()))
        attempt_outcomes = ", ".join(f"{k} {v}" for k, v in sorted(self.attempt_outcomes.items()))
        lines = [
            f"chaos | {scenario}: {took}",
            f"  leads      {self.leads_submitted} submitted: {statuses} (finished as {outcomes})",
            f"  attempts   {self.attempts}, unfinalized {self.attempts_unfinalized}, "
            f"abandoned before a call {self.abandoned_attempts} ({attempt_outcomes})",
            f"  carrier    {self.sim_calls} calls placed, {self.calls_owned} owned by an attempt, "
            f"{len(self.orphan_calls)} owned by none (dials per attempt: "
            f"{self.calls_owned} x1, {self.abandoned_attempts} x0), {self.sim_active_calls} live",
            f"  redis      {self.channel_tokens_held} channel tokens and "
            f"{self.media_reservations_held} media reservations still held",
        ]
        if actions is not None:
            done = ", ".join(f"{k} {v}" for k, v in sorted(actions.items())) or "nothing"
            lines.append(f"  reconciler {done}")
        return "\n".join(lines)


@dataclass
class Observer:
    sessions: sessionmaker[Session]
    redis_url: str
    simulator_url: str

    def snapshot(self, lead_ids: list[str]) -> Snapshot:
        snap = Snapshot(leads_submitted=len(lead_ids))
        calls = self._carrier_calls()
        snap.sim_calls = len(calls)
        snap.sim_active_calls = sum(1 for c in calls if c["status"] not in _FINAL)
        with self.sessions() as session:
            self._read_leads(session, snap, set(lead_ids), calls)
        self._read_redis(snap)
        return snap

    def _read_leads(
        self, session: Session, snap: Snapshot, wanted: set[str], calls: list[dict[str, Any]]
    ) -> None:
        leads = [lead for lead in session.scalars(select(Lead)) if str(lead.id) in wanted]
        soon = datetime.now(UTC) + STILL_DUE_WITHIN
        calls_to: dict[str, list[str]] = {}
        for call in calls:
            calls_to.setdefault(str(call["to"]), []).append(str(call["sid"]))
        for lead in leads:
            snap.leads_by_status[lead.status.value] += 1
            if lead.outcome is not None:
                snap.lead_outcomes[lead.outcome.value] += 1
            if lead.status == LeadStatus.SCHEDULED and lead.next_attempt_at is None:
                snap.scheduled_without_time += 1
            elif lead.status == LeadStatus.SCHEDULED and lead.next_attempt_at < soon:
                snap.scheduled_due_soon += 1
        attempts = session.scalars(
            select(CallAttempt).where(CallAttempt.lead_id.in_([lead.id for lead in leads]))
        ).all()
        by_lead: dict[Any, list[CallAttempt]] = {}
        for attempt in attempts:
            by_lead.setdefault(attempt.lead_id, []).append(attempt)
            snap.attempts += 1
            snap.attempts_unfinalized += attempt.finalized_at is None
            snap.attempt_outcomes[attempt.outcome.value if attempt.outcome else "none"] += 1
            snap.abandoned_attempts += attempt.provider_call_sid is None
        # Every lead has its own phone number, so the carrier's calls to it are that lead's
        # dials; each must be owned (by SID) by a distinct attempt of the lead.
        for lead in leads:
            owned = {a.provider_call_sid for a in by_lead.get(lead.id, []) if a.provider_call_sid}
            placed = calls_to.get(lead.phone, [])
            snap.calls_owned += sum(1 for sid in placed if sid in owned)
            snap.orphan_calls += [sid for sid in placed if sid not in owned]

    def _carrier_calls(self) -> list[dict[str, Any]]:
        """Every call the carrier placed, from its own REST API (Twilio's list shape)."""
        url = f"{self.simulator_url}/2010-04-01/Accounts/{DEV_ACCOUNT_SID}/Calls.json"
        auth = (DEV_ACCOUNT_SID, DEV_AUTH_TOKEN)
        calls: list[dict[str, Any]] = []
        with httpx.Client(auth=auth, timeout=10) as client:
            page = client.get(url, params={"PageSize": 1000}).raise_for_status().json()
            calls += page["calls"]
            while page.get("next_page_uri"):
                page = client.get(self.simulator_url + page["next_page_uri"]).raise_for_status()
                page = page.json()
                calls += page["calls"]
        return calls

    def _read_redis(self, snap: Snapshot) -> None:
        client = redis.Redis.from_url(self.redis_url, socket_timeout=5)
        try:
            prefix, resv_suffix = redis_keys.media_worker_key_affixes()
            channel_prefix = redis_keys.channel_leases("")
            for key in client.scan_iter(match=f"{channel_prefix}*", count=500):
                snap.channel_tokens_held += int(client.zcard(key))
            for key in client.scan_iter(match=f"{prefix}*{resv_suffix}", count=500):
                snap.media_reservations_held += int(client.zcard(key))
        finally:
            client.close()


_FINAL = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
