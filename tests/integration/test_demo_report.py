"""The demo's closing report over real PostgreSQL: counts come from the run's leads and the
call records finalization stored on their attempts (built here by a real `CallRecord`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, update

from dispatcher.demo_report import build_report, deferral_counts
from media_worker.record import CallRecord, EndCause
from shared.db.models import Lead
from shared.db.session import transaction
from shared.enums import Outcome
from tests.integration.fleet import Fleet


def _record_with_failover_route_and_turns() -> dict[str, Any]:
    t0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    record = CallRecord("front desk", clock=lambda: t0)
    record.mark_answered(t0)
    record.add_utterance("agent", "Hello", started_at=t0, tts_provider="elevenlabs")
    record.add_tts_failover("elevenlabs", "espeak", "3 failures", t0 + timedelta(seconds=1))
    record.switch_agent("orders", t0 + timedelta(seconds=2))
    record.add_utterance("agent", "About your order", started_at=t0, tts_provider="espeak")
    for ms in (420, 380, 900):
        record.add_turn_latency_ms(ms)
    record.decide_outcome(Outcome.CONFIRMED)
    record.end(EndCause.CONVERSATION, t0 + timedelta(seconds=30))
    return record.to_finalize_record()


def test_report_counts_one_runs_leads_attempts_and_call_records(fleet: Any) -> None:
    f: Fleet = fleet()
    confirmed, retried, unrelated = (
        f.add_lead(),
        f.add_lead("+919812345679"),
        f.add_lead("+919812345670"),
    )
    f.queue()
    for lead_id in (confirmed, retried):
        assert f.dispatch(lead_id).action == "dialed"
    [attempt] = f.attempts(confirmed)
    f.finalize(
        attempt.id,
        Outcome.CONFIRMED,
        "conversation",
        record=_record_with_failover_route_and_turns(),
    )
    [first] = f.attempts(retried)
    f.finalize(first.id, Outcome.NO_ANSWER)
    with transaction(f.sessions) as session:  # the retry falls due now
        session.execute(update(Lead).where(Lead.id == retried).values(next_attempt_at=func.now()))
    assert f.queue() == [retried]
    assert f.dispatch(retried).action == "dialed"

    with f.sessions() as session:
        report = build_report(session, [confirmed, retried], {"CHANNELS_BUSY": 2})
    assert report.leads == 2 and report.attempts == 3 and report.retried_leads == 1
    assert report.outcomes["CONFIRMED"] == 1
    assert report.attempt_outcomes == {"CONFIRMED": 1, "NO_ANSWER": 1}
    assert report.statuses == {"FINISHED": 1, "DIALING": 1}
    assert sorted(report.turn_latencies_ms) == [380, 420, 900]
    assert report.tts_failovers == {"elevenlabs -> espeak": 1}
    assert report.routes == {"front desk -> orders": 1}
    assert report.tts_speakers == {"elevenlabs": 1, "espeak": 1}
    text = "\n".join(report.lines())
    assert "p50 420 ms, p95 900 ms" in text and "CHANNELS_BUSY 2" in text
    assert unrelated not in (confirmed, retried)


def test_deferral_counts_keep_only_deferred_verdicts() -> None:
    counts = {("deferred", "MEDIA_BUSY"): 3.0, ("dialed", ""): 9.0, ("finished", "DNC"): 1.0}
    assert deferral_counts(counts) == {"MEDIA_BUSY": 3}
