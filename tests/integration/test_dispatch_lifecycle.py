"""After the dial: finalization exactly once, the reconciler's repairs, carrier status
events, the sweep, and losing Redis mid-run."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from dispatcher.call_events import CallStatus, apply_call_status, outcome_from_events
from dispatcher.lead_state import DialClaim, claim_for_dial
from dispatcher.providers import DialOutcomeUnknown, InstantProvider
from dispatcher.sweep import claim_due
from dispatcher.tasks.finalize import release_held
from shared.db.models import CallAttempt, Lead, WebhookDelivery
from shared.db.session import transaction
from shared.enums import AttemptState, DeferralReason, LeadStatus, Outcome
from tests.integration.fleet import Fleet

PHONE = "+919812345678"


def dialed(f: Fleet, phone: str = PHONE, **fields: Any) -> tuple[Any, Any]:
    lead_id = f.add_lead(phone, **fields)
    f.queue()
    verdict = f.dispatch(lead_id)
    assert verdict.action == "dialed"
    return lead_id, verdict.attempt_id


def webhooks(f: Fleet) -> list[WebhookDelivery]:
    with f.sessions() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at)))


def test_business_outcome_finishes_the_lead_and_frees_everything(fleet: Any) -> None:
    f: Fleet = fleet()
    lead_id, attempt_id = dialed(f)
    free = f.slots.free_slots()
    result = f.finalize(attempt_id, Outcome.CONFIRMED, source="conversation")
    assert result.applied and result.lead_status == LeadStatus.FINISHED
    lead = f.lead(lead_id)
    assert (lead.status, lead.outcome) == (LeadStatus.FINISHED, Outcome.CONFIRMED)
    assert f.channels.in_use(f.number_id()) == 0
    assert f.slots.free_slots() == free + 1
    [hook] = webhooks(f)
    assert hook.event == "lead.finished" and hook.payload["outcome"] == "CONFIRMED"
    assert PHONE not in str(hook.payload)


def test_duplicate_and_concurrent_finalizations_apply_once(fleet: Any) -> None:
    f: Fleet = fleet()
    lead_id, attempt_id = dialed(f)
    start = threading.Barrier(4)

    def race(outcome: Outcome) -> bool:
        start.wait()
        return f.finalize(attempt_id, outcome).applied

    outcomes = [Outcome.NO_ANSWER, Outcome.NO_ANSWER, Outcome.BUSY, Outcome.NO_ANSWER]
    with ThreadPoolExecutor(4) as pool:
        applied = list(pool.map(race, outcomes))
    assert applied.count(True) == 1
    lead = f.lead(lead_id)
    assert lead.status == LeadStatus.SCHEDULED  # retried once, by the policy
    assert lead.last_deferral_reason == DeferralReason.RETRY_SCHEDULED
    assert lead.next_attempt_at is not None and lead.next_attempt_at > datetime.now(UTC)
    assert len(webhooks(f)) == 1
    # Released once: the number's channels are all free, not "more than free".
    assert f.channels.in_use(f.number_id()) == 0
    tokens = [
        f.channels.try_acquire(f.number_id(), max_channels=5, lease_ttl_s=60) for _ in range(6)
    ]
    assert sum(t is not None for t in tokens) == 5


def test_exhausted_attempts_finish_max_attempts(fleet: Any) -> None:
    f: Fleet = fleet()
    lead_id = f.add_lead(PHONE, max_attempts=1)
    f.queue()
    attempt_id = f.dispatch(lead_id).attempt_id
    f.finalize(attempt_id, Outcome.BUSY)
    lead = f.lead(lead_id)
    assert (lead.status, lead.outcome) == (LeadStatus.FINISHED, Outcome.MAX_ATTEMPTS)
    assert f.attempts(lead_id)[0].outcome == Outcome.BUSY


def test_retry_past_the_deadline_expires(fleet: Any) -> None:
    f: Fleet = fleet()
    deadline = datetime.now(UTC) + timedelta(minutes=10)  # first retry is 30 min later
    lead_id, attempt_id = dialed(f, deadline=deadline.isoformat())
    f.finalize(attempt_id, Outcome.NO_ANSWER)
    assert f.lead(lead_id).outcome == Outcome.EXPIRED


def test_crash_between_attempt_row_and_dial_never_dials_twice(fleet: Any) -> None:
    """The attempt row committed, then the dispatcher died before (or while) dialing."""
    f: Fleet = fleet()
    lead_id = f.add_lead(PHONE)
    f.queue()
    token = f.channels.try_acquire(f.number_id(), max_channels=5, lease_ttl_s=60)
    slot = f.slots.reserve(reservation_ttl_s=60)
    assert token and slot
    import uuid

    from shared.db.models import PhoneNumber

    with transaction(f.sessions) as session:
        number_id = session.scalar(select(PhoneNumber.id))
        claim = DialClaim(
            uuid.uuid4(), number_id, token, slot.worker_id, slot.reservation_id, slot.stream_url
        )  # type: ignore[arg-type]
        assert claim_for_dial(session, lead_id, claim) == 1

    # Nothing reached the carrier: the reconciler abandons the attempt and frees all.
    report = f.reconciler().run(datetime.now(UTC))
    assert (report.abandoned, report.adopted) == (1, 0)
    lead = f.lead(lead_id)
    assert (lead.status, lead.attempts) == (LeadStatus.SCHEDULED, 0)
    assert lead.last_deferral_reason == DeferralReason.DIAL_UNCONFIRMED
    assert f.channels.in_use(f.number_id()) == 0
    assert f.provider.dial_attempts == 0

    # The same lead is then dialed exactly once.
    f.queue()
    assert f.dispatch(lead_id).action == "dialed"
    assert f.provider.dial_attempts == 1


def test_unconfirmed_dial_that_did_reach_the_carrier_is_adopted(fleet: Any) -> None:
    f: Fleet = fleet()

    class TimesOutAfterDialing(InstantProvider):
        def place_call(self, request: Any) -> Any:
            super().place_call(request)
            raise DialOutcomeUnknown("read timeout after sending")

    carrier = TimesOutAfterDialing()
    lead_id = f.add_lead(PHONE)
    f.queue()
    verdict = f.dispatch(lead_id, admission=f.admission(provider=carrier))
    assert verdict.action == "unconfirmed"
    assert f.lead(lead_id).status == LeadStatus.DIALING

    report = f.reconciler(provider=carrier).run(datetime.now(UTC))
    assert report.adopted == 1 and report.abandoned == 0
    [attempt] = f.attempts(lead_id)
    assert attempt.provider_call_sid == carrier.placed_calls[0].call_sid
    assert attempt.state == AttemptState.DIALING
    assert carrier.dial_attempts == 1  # the reconciler asked; it did not dial
    assert f.channels.in_use(f.number_id()) == 1  # the live call keeps its channel


def test_lost_dispatch_task_returns_the_lead_to_scheduled(fleet: Any) -> None:
    f: Fleet = fleet()
    lead_id = f.add_lead(PHONE)
    f.queue()  # QUEUED, but its dispatch message is never consumed
    with transaction(f.sessions) as session:
        session.execute(update(Lead).values(queued_at=datetime.now(UTC) - timedelta(minutes=10)))
    report = f.reconciler().run(datetime.now(UTC))
    assert report.requeued == 1
    lead = f.lead(lead_id)
    assert (lead.status, lead.last_deferral_reason) == (LeadStatus.SCHEDULED, "DISPATCH_LOST")


def test_sweepers_never_claim_one_lead_twice(fleet: Any) -> None:
    f: Fleet = fleet()
    for i in range(40):
        f.add_lead(f"+91981234{5600 + i}")
    start = threading.Barrier(4)

    def sweep(_: int) -> list[Any]:
        start.wait()
        claimed: list[Any] = []
        while True:
            with transaction(f.sessions) as session:
                batch = claim_due(session, limit=3)
            if not batch:
                return claimed
            claimed += batch

    with ThreadPoolExecutor(4) as pool:
        claims = [lead for batch in pool.map(sweep, range(4)) for lead in batch]
    assert len(claims) == 40 == len(set(claims))


def test_future_leads_are_not_swept(fleet: Any) -> None:
    f: Fleet = fleet()
    f.add_lead(PHONE, not_before=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    assert f.queue() == []


def _status(f: Fleet, attempt_id: Any, sid: str, status: str, **extra: Any) -> Any:
    with transaction(f.sessions) as session:
        return apply_call_status(
            session,
            attempt_id,
            CallStatus(sid, status, **extra),
            datetime.now(UTC),
            voicemail_hangs_up=True,
        )


def test_carrier_events_move_forward_and_duplicates_change_nothing(fleet: Any) -> None:
    f: Fleet = fleet()
    lead_id, attempt_id = dialed(f)
    sid = f.attempts(lead_id)[0].provider_call_sid
    assert sid is not None
    for status in ("initiated", "ringing", "in-progress", "in-progress", "ringing"):
        step = _status(f, attempt_id, sid, status)
        assert step.finalize_now is None and step.finalize_later is None
    [attempt] = f.attempts(lead_id)
    assert attempt.state == AttemptState.IN_PROGRESS
    assert [e["status"] for e in attempt.events] == ["initiated", "ringing", "in-progress"]
    assert f.lead(lead_id).status == LeadStatus.IN_CALL
    done = _status(f, attempt_id, sid, "completed", duration_s=42)
    assert done.finalize_later == Outcome.COMPLETED and done.finalize_now is None
    assert _status(f, attempt_id, sid, "completed").finalize_later is None  # duplicate


def test_unanswered_final_statuses_finalize_now(fleet: Any) -> None:
    f: Fleet = fleet()
    expected = {"no-answer": Outcome.NO_ANSWER, "busy": Outcome.BUSY, "failed": Outcome.FAILED}
    for i, (status, outcome) in enumerate(expected.items()):
        lead_id, attempt_id = dialed(f, f"+44207946095{i}")
        sid = f.attempts(lead_id)[0].provider_call_sid
        assert _status(f, attempt_id, sid, status).finalize_now == outcome


def test_completed_overtaking_in_progress_is_still_an_answered_call(fleet: Any) -> None:
    """Callbacks can arrive out of order: `completed` means answered, with or without the
    `in-progress` before it, and the late `in-progress` then changes nothing."""
    f: Fleet = fleet()
    lead_id, attempt_id = dialed(f)
    sid = f.attempts(lead_id)[0].provider_call_sid
    step = _status(f, attempt_id, sid, "completed", duration_s=30)
    assert step.finalize_later == Outcome.COMPLETED and step.finalize_now is None
    [attempt] = f.attempts(lead_id)
    assert attempt.answered_at is not None and attempt.ended_at is not None
    assert (attempt.ended_at - attempt.answered_at).total_seconds() == 30
    f.finalize(attempt_id, Outcome.COMPLETED)
    assert _status(f, attempt_id, sid, "in-progress").finalize_now is None
    assert f.attempts(lead_id)[0].state == AttemptState.ENDED


def test_answering_machine_hangs_up_as_voicemail(fleet: Any) -> None:
    f: Fleet = fleet()
    lead_id, attempt_id = dialed(f)
    sid = f.attempts(lead_id)[0].provider_call_sid
    step = _status(f, attempt_id, sid, "in-progress", answered_by="machine_start")
    assert step.hang_up and step.finalize_now == Outcome.VOICEMAIL


def test_an_event_for_another_call_sid_is_ignored(fleet: Any) -> None:
    f: Fleet = fleet()
    lead_id, attempt_id = dialed(f)
    step = _status(f, attempt_id, "CA" + "f" * 32, "busy")
    assert step.finalize_now is None
    assert f.attempts(lead_id)[0].events == []


def test_redis_flushed_mid_run_loses_no_lead(fleet: Any) -> None:
    f: Fleet = fleet(channels=50)
    phones = [f"+9198123{45600 + i}" for i in range(30)]
    lead_ids = [f.add_lead(phone) for phone in phones]
    first = f.queue()
    for lead_id in first[:10]:
        f.dispatch(lead_id)
    f.redis.flushdb()  # leases, windows, media capacity and broker state are gone

    # The media worker's next heartbeat re-advertises; dispatch carries on.
    f.advertise_media(slots=50)
    verdicts = [f.dispatch(lead_id) for lead_id in first[10:]]
    assert all(v.action == "dialed" for v in verdicts)
    with f.sessions() as session:
        statuses = dict(
            session.execute(select(Lead.status, func.count()).group_by(Lead.status)).all()
        )
        attempts = session.scalar(select(func.count()).select_from(CallAttempt))
    assert sum(statuses.values()) == len(lead_ids) == 30
    assert statuses == {LeadStatus.DIALING: 30}
    assert attempts == 30 == len(f.provider.placed_calls)
    assert len({c.request.to for c in f.provider.placed_calls}) == 30


def test_an_ended_attempt_whose_finalize_was_lost_is_closed_by_the_reconciler(
    fleet: Any,
) -> None:
    """The carrier's final status was stored but its finalize message never went out (the
    broker was down): after the grace the reconciler closes the attempt as the carrier saw
    it, the lead follows its retry policy and the channel comes back."""
    f: Fleet = fleet()
    lead_id, attempt_id = dialed(f)
    sid = f.attempts(lead_id)[0].provider_call_sid
    assert _status(f, attempt_id, sid, "busy").finalize_now == Outcome.BUSY  # never sent
    assert f.reconciler(ended_unfinalized_grace_s=30).run(datetime.now(UTC)).closed_ended == 0

    later = datetime.now(UTC) + timedelta(seconds=31)
    report = f.reconciler(ended_unfinalized_grace_s=30).run(later)
    assert report.closed_ended == 1
    [finalized] = report.finalized
    release_held(f.channels, f.slots, finalized)
    [attempt] = f.attempts(lead_id)
    assert (attempt.outcome, attempt.outcome_source) == (Outcome.BUSY, "reconciler")
    assert f.lead(lead_id).status == LeadStatus.SCHEDULED  # BUSY is retried by the template
    assert f.channels.in_use(f.number_id()) == 0
    assert f.reconciler().run(later).closed_ended == 0  # once


def test_outcome_from_events_reads_the_carriers_last_word() -> None:
    assert outcome_from_events([{"status": "ringing"}, {"status": "no-answer"}]) == (
        Outcome.NO_ANSWER
    )
    assert outcome_from_events([{"status": "completed"}]) == Outcome.COMPLETED
    machine = {"status": "in-progress", "answered_by": "machine_start"}
    assert outcome_from_events([machine, {"status": "completed"}]) == Outcome.VOICEMAIL
    assert outcome_from_events([]) == Outcome.FAILED
