"""Admission gates over real PostgreSQL and Redis: each gate's edges, strict caps under
concurrency, and that a dispatch gives back everything it took when a later step fails."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from sqlalchemy import func, select, text

from dispatcher.admission import pipeline as admission_pipeline
from dispatcher.providers import InstantProvider, InvalidDestination, ProviderUnavailable
from shared.db.models import Lead, PhoneNumber, Suppression, WebhookDelivery
from shared.db.session import make_engine, transaction
from shared.enums import AttemptState, DeferralReason, LeadStatus, Outcome
from tests.integration.fleet import MEDIA_WORKER, STREAM_URL, Fleet, template_document

PHONE = "+919812345678"


def queued_lead(fleet: Fleet, phone: str = PHONE, **fields: Any) -> Any:
    lead_id = fleet.add_lead(phone, **fields)
    assert lead_id in fleet.queue()
    return lead_id


def test_a_due_lead_is_dialed_with_a_signed_token(fleet: Any) -> None:
    f: Fleet = fleet()
    lead_id = queued_lead(f)
    verdict = f.dispatch(lead_id)
    assert verdict.action == "dialed"

    [call] = f.provider.placed_calls
    assert call.request.to == PHONE and call.request.stream_url == STREAM_URL
    assert "token" in call.request.stream_parameters
    assert f"attempt={verdict.attempt_id}" in call.request.status_callback_url
    [attempt] = f.attempts(lead_id)
    assert attempt.provider_call_sid == call.call_sid
    assert attempt.state == AttemptState.DIALING
    assert attempt.media_worker_id == MEDIA_WORKER
    lead = f.lead(lead_id)
    assert (lead.status, lead.attempts) == (LeadStatus.DIALING, 1)
    assert f.channels.in_use(f.number_id()) == 1
    assert f.window_entries(PHONE) == 1


def test_a_redelivered_dispatch_does_nothing(fleet: Any) -> None:
    f: Fleet = fleet()
    lead_id = queued_lead(f)
    assert f.dispatch(lead_id).action == "dialed"
    assert f.dispatch(lead_id).action == "skipped"
    assert len(f.provider.placed_calls) == 1


def test_closed_window_defers_to_the_opening_and_takes_nothing(fleet: Any) -> None:
    window = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}
    f: Fleet = fleet(document=template_document(calling_window=window))
    lead_id = queued_lead(f, timezone="Asia/Kolkata")
    saturday_noon_utc = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    verdict = f.dispatch(lead_id, now=saturday_noon_utc)
    assert (verdict.action, verdict.reason) == ("deferred", DeferralReason.WINDOW_CLOSED)
    lead = f.lead(lead_id)
    assert lead.status == LeadStatus.SCHEDULED
    assert lead.next_attempt_at == datetime(2026, 11, 30, 3, 30, tzinfo=UTC)  # Mon 09:00 IST
    assert lead.last_deferral_reason == DeferralReason.WINDOW_CLOSED
    assert f.channels.in_use(f.number_id()) == 0 and f.window_entries(PHONE) == 0


def test_window_opening_after_the_deadline_expires_the_lead(fleet: Any) -> None:
    now = datetime.now(UTC)
    in_two_days = (now + timedelta(days=2)).astimezone(ZoneInfo("Asia/Kolkata"))
    day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][in_two_days.weekday()]
    window = {"days": [day], "start": "09:00", "end": "10:00"}
    f: Fleet = fleet(document=template_document(calling_window=window))
    deadline = now + timedelta(hours=2)
    lead_id = queued_lead(f, timezone="Asia/Kolkata", deadline=deadline.isoformat())
    verdict = f.dispatch(lead_id, now=now)
    assert (verdict.action, verdict.reason) == ("finished", Outcome.EXPIRED)
    assert f.lead(lead_id).outcome == Outcome.EXPIRED
    assert f.provider.placed_calls == []


def test_past_deadline_expires_before_anything_is_taken(fleet: Any) -> None:
    f: Fleet = fleet()
    lead_id = queued_lead(f, deadline=(datetime.now(UTC) + timedelta(minutes=5)).isoformat())
    verdict = f.dispatch(lead_id, now=datetime.now(UTC) + timedelta(hours=1))
    assert (verdict.action, verdict.reason) == ("finished", Outcome.EXPIRED)
    assert f.channels.in_use(f.number_id()) == 0


def test_suppressed_numbers_finish_dnc_merchant_and_global(fleet: Any) -> None:
    f: Fleet = fleet()
    with transaction(f.sessions) as session:
        session.add(Suppression(merchant_id=f.merchant_id, e164=PHONE))
        session.add(Suppression(merchant_id=None, e164="+442079460958"))
    for phone in (PHONE, "+442079460958"):
        lead_id = queued_lead(f, phone)
        assert f.dispatch(lead_id).reason == Outcome.DNC
        assert f.lead(lead_id).outcome == Outcome.DNC
    assert f.provider.placed_calls == []
    with f.sessions() as session:
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 2


def _unavailable(f: Fleet, lead_id: Any) -> None:
    verdict = f.dispatch(lead_id)
    assert (verdict.action, verdict.reason) == ("finished", Outcome.NUMBER_UNAVAILABLE)
    assert f.lead(lead_id).status == LeadStatus.FINISHED


def test_number_unavailable_causes_finish_once_and_alert_once(fleet: Any) -> None:
    f: Fleet = fleet(channels=0)  # no number anywhere
    _unavailable(f, queued_lead(f))
    _unavailable(f, queued_lead(f, "+442079460958"))
    assert len(f.alert_posts) == 1  # one alert per (merchant, template) per 30 minutes
    assert f.provider.placed_calls == []


def test_disabled_pool_and_pinned_numbers_are_unavailable(fleet: Any) -> None:
    f: Fleet = fleet(document=template_document(outbound_number="+14155550199"))
    _unavailable(f, queued_lead(f))  # pinned number is not registered
    with transaction(f.sessions) as session:
        session.add(
            PhoneNumber(e164="+14155550199", provider="twilio", max_channels=2, enabled=False)
        )
    _unavailable(f, queued_lead(f, "+442079460958"))  # pinned number disabled

    g: Fleet = fleet()
    with transaction(g.sessions) as session:
        for number in session.scalars(select(PhoneNumber)):
            number.enabled = False
    _unavailable(g, queued_lead(g, "+442079460957"))


def test_shared_pool_is_used_when_the_merchant_has_none(fleet: Any) -> None:
    f: Fleet = fleet(channels=0)
    with transaction(f.sessions) as session:
        session.add(PhoneNumber(e164="+14155550177", provider="twilio", max_channels=1))
    assert f.dispatch(queued_lead(f)).action == "dialed"
    assert f.provider.placed_calls[0].request.from_ == "+14155550177"


def test_rate_limit_defers_until_the_oldest_dial_leaves_the_window(fleet: Any) -> None:
    f: Fleet = fleet()
    verdicts = [f.dispatch(queued_lead(f)) for _ in range(4)]
    assert [v.action for v in verdicts] == ["dialed", "dialed", "dialed", "deferred"]
    assert verdicts[3].reason == DeferralReason.RATE_LIMITED
    waiting = [lead for lead in _all_leads(f) if lead.status == LeadStatus.SCHEDULED]
    assert len(waiting) == 1
    wait = waiting[0].next_attempt_at - datetime.now(UTC)  # type: ignore[operator]
    assert timedelta(minutes=55) < wait <= timedelta(hours=1)
    assert f.window_entries(PHONE) == 3


def _all_leads(f: Fleet) -> list[Any]:
    from shared.db.models import Lead

    with f.sessions() as session:
        return list(session.scalars(select(Lead)))


def test_strict_cap_under_concurrency(fleet: Any) -> None:
    """20 leads for one phone, 8 dispatchers at once, limit 3: exactly 3 dials."""
    f: Fleet = fleet(channels=20)
    lead_ids = [f.add_lead(PHONE) for _ in range(20)]
    f.queue()
    start = threading.Barrier(8)
    admission = f.admission()

    def run(chunk: list[Any]) -> list[str]:
        start.wait()
        return [admission.admit(lead_id, datetime.now(UTC)).action for lead_id in chunk]

    chunks = [lead_ids[i::8] for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        actions = [a for chunk in pool.map(run, chunks) for a in chunk]
    assert actions.count("dialed") == 3
    assert len(f.provider.placed_calls) == 3
    assert f.window_entries(PHONE) == 3
    assert f.channels.in_use(f.number_id()) == 3


def test_channel_exhaustion_defers_and_never_writes_the_rate_window(fleet: Any) -> None:
    f: Fleet = fleet(channels=1)
    assert f.channels.try_acquire(f.number_id(), max_channels=1, lease_ttl_s=60) is not None
    lead_id = queued_lead(f)
    verdict = f.dispatch(lead_id)
    assert (verdict.action, verdict.reason) == ("deferred", DeferralReason.CHANNELS_BUSY)
    assert f.window_entries(PHONE) == 0
    lead = f.lead(lead_id)
    assert lead.deferrals == 1 and lead.next_attempt_at is not None
    assert lead.next_attempt_at > datetime.now(UTC)


def test_no_media_slot_releases_the_channel(fleet: Any) -> None:
    f: Fleet = fleet()
    f.slots.withdraw(MEDIA_WORKER)
    verdict = f.dispatch(queued_lead(f))
    assert (verdict.action, verdict.reason) == ("deferred", DeferralReason.MEDIA_BUSY)
    assert f.channels.in_use(f.number_id()) == 0
    assert f.window_entries(PHONE) == 0


def test_retryable_carrier_error_defers_without_spending_an_attempt(fleet: Any) -> None:
    f: Fleet = fleet()
    flaky = InstantProvider(
        fail_first_n=1, fail_with=lambda: ProviderUnavailable("503", status_code=503)
    )
    lead_id = queued_lead(f)
    verdict = f.dispatch(lead_id, admission=f.admission(provider=flaky))
    assert (verdict.action, verdict.reason) == ("deferred", DeferralReason.PROVIDER_UNAVAILABLE)
    lead = f.lead(lead_id)
    assert (lead.status, lead.attempts) == (LeadStatus.SCHEDULED, 0)
    assert f.channels.in_use(f.number_id()) == 0 and f.window_entries(PHONE) == 0
    [failed] = f.attempts(lead_id)
    assert (failed.state, failed.outcome) == (AttemptState.ENDED, Outcome.FAILED)

    f.queue()
    with transaction(f.sessions) as session:  # due again now, for the test
        from shared.db.models import Lead

        session.get(Lead, lead_id).next_attempt_at = datetime.now(UTC)  # type: ignore[union-attr]
        session.get(Lead, lead_id).status = LeadStatus.QUEUED  # type: ignore[union-attr]
    assert f.dispatch(lead_id, admission=f.admission(provider=flaky)).action == "dialed"
    assert [a.attempt_no for a in f.attempts(lead_id)] == [1, 2]
    assert f.lead(lead_id).attempts == 1


def test_invalid_destination_finishes_invalid_phone(fleet: Any) -> None:
    f: Fleet = fleet()
    refused = InstantProvider(
        fail_first_n=1,
        fail_with=lambda: InvalidDestination("21211", status_code=400, provider_code=21211),
    )
    lead_id = queued_lead(f)
    verdict = f.dispatch(lead_id, admission=f.admission(provider=refused))
    assert (verdict.action, verdict.reason) == ("finished", Outcome.INVALID_PHONE)
    assert f.lead(lead_id).outcome == Outcome.INVALID_PHONE
    assert f.channels.in_use(f.number_id()) == 0


def test_cancelled_while_queued_is_not_dialed(fleet: Any) -> None:
    from dispatcher.intake.queries import cancel_lead

    f: Fleet = fleet()
    lead_id = queued_lead(f)
    with transaction(f.sessions) as session:
        cancel_lead(session, f.merchant_id, lead_id)
    assert f.dispatch(lead_id).action == "skipped"
    assert f.provider.placed_calls == []


def test_a_connection_that_died_in_the_pool_is_replaced_without_a_pre_ping(
    fleet: Any, settings: Any
) -> None:
    """Admission's engine skips the pool's pre-ping; a pooled connection whose server
    process is gone (PostgreSQL restarted) fails the first read, which is retried once."""
    f: Fleet = fleet()
    engine = make_engine(settings, pool_size=1, pre_ping=False)
    try:
        admission = f.admission(engine=engine)
        with engine.connect() as connection:
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with transaction(f.sessions) as session:
            session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        verdict = f.dispatch(queued_lead(f), admission=admission)
        assert verdict.action == "dialed"
        with engine.connect() as connection:
            assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    finally:
        engine.dispose()


def test_a_failed_first_read_gives_its_connection_back(
    fleet: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error that is not a dead connection is raised, and the connection still returns to
    the pool (a leaked one would hold a server process until the worker exits)."""
    f: Fleet = fleet()
    engine = make_engine(settings, pool_size=1, pre_ping=False)
    try:
        admission = f.admission(engine=engine)
        lead_id = queued_lead(f)

        def refuse(*_: Any) -> None:
            raise psycopg.ProgrammingError("refused by the test")

        monkeypatch.setattr(admission_pipeline, "load_queued_lead", refuse)
        with pytest.raises(psycopg.ProgrammingError) as failure:
            f.dispatch(lead_id, admission=admission)
        # Asked while the traceback (and so the failed frame) is still alive: the connection
        # went back because admission closed it, not because the garbage collector did.
        assert failure.tb is not None and engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        assert f.provider.placed_calls == []
    finally:
        engine.dispose()


def test_the_window_is_judged_in_the_zones_stored_at_intake(fleet: Any) -> None:
    """Intake stores the number's zones, and admission reads them instead of looking the
    number up again: a lead whose stored zones differ is judged in those."""
    window = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}
    f: Fleet = fleet(document=template_document(calling_window=window))
    lead_id = queued_lead(f)
    assert f.lead(lead_id).phone_zones == ["Asia/Calcutta"]
    monday_0600_utc = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # 11:30 in India: open
    with transaction(f.sessions) as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        lead.phone_zones = ["America/New_York"]  # 01:00 there: closed
    verdict = f.dispatch(lead_id, now=monday_0600_utc)
    assert (verdict.action, verdict.reason) == ("deferred", DeferralReason.WINDOW_CLOSED)
    assert f.lead(lead_id).next_attempt_at == datetime(2026, 11, 30, 14, 0, tzinfo=UTC)


def test_a_lead_naming_its_timezone_stores_no_number_zones(fleet: Any) -> None:
    f: Fleet = fleet()
    assert f.lead(queued_lead(f, timezone="Europe/Paris")).phone_zones is None


def test_templates_that_leave_voicemail_messages_dial_waiting_for_the_beep(fleet: Any) -> None:
    voicemail = {"action": "leave_message", "message": "Please call us back."}
    f: Fleet = fleet(document=template_document(voicemail=voicemail))
    assert f.dispatch(queued_lead(f), admission=f.admission(machine_detection=True)).action == (
        "dialed"
    )
    [call] = f.provider.placed_calls
    assert call.request.machine_detection and call.request.wait_for_beep
