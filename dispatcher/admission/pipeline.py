"""One dispatch: the admission gates in DESIGN.md's order, then the dial.

Cheap checks come before scarce ones, and whatever a dispatch takes (channel token, media
slot, rate-window entry) is given back if a later step fails: an ExitStack holds the
releases until the attempt row owns the resources.

The common path costs three statements on one autocommit connection: the admission view
(lead, suppression, numbers), the claim (lead to DIALING plus the attempt row), and the SID.
Each is atomic on its own, so none needs a transaction's BEGIN/COMMIT round trips; the rarer
endings (finish, defer, refused dial) run in ordinary transactions.
"""

from __future__ import annotations

import random
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
import structlog
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.admission.backoff import capacity_backoff_s
from dispatcher.admission.numbers import NumberUnavailable, OutboundNumber, outbound_numbers
from dispatcher.admission.options import AdmissionOptions
from dispatcher.admission.snapshot import LeadSnapshot, load_queued_lead
from dispatcher.admission.window import next_opening, recipient_zones
from dispatcher.alerts import Alerter
from dispatcher.lead_state import (
    DialClaim,
    abandon_dial,
    claim_for_dial,
    defer,
    finish,
    record_dialed,
)
from dispatcher.providers import (
    CallProvider,
    DialOutcomeUnknown,
    DialRequest,
    InvalidDestination,
    ProviderError,
)
from shared.call_tokens import issue_call_token
from shared.coordination import (
    AdmissionGates,
    ChannelLeases,
    GateNumber,
    GateRefused,
    MediaSlots,
    RateLimiter,
)
from shared.db.session import transaction
from shared.enums import DeferralReason, Outcome

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Verdict:
    """What one dispatch did: `dialed`, `deferred`, `finished`, `skipped` or `unconfirmed`."""

    action: str
    reason: str | None = None
    attempt_id: uuid.UUID | None = None
    call_sid: str | None = None


SKIPPED = Verdict("skipped")


def _connection_is_dead(connection: Connection, exc: Exception) -> bool:
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated
    return bool(connection.connection.driver_connection.broken)  # type: ignore[union-attr]


class Admission:
    """Runs the gates for one queued lead. Built once per worker process."""

    def __init__(
        self,
        *,
        engine: Engine,
        sessions: sessionmaker[Session],
        limiter: RateLimiter,
        channels: ChannelLeases,
        slots: MediaSlots,
        gates: AdmissionGates,
        provider: CallProvider,
        alerter: Alerter,
        options: AdmissionOptions,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        self.limiter = limiter
        self.channels = channels
        self.slots = slots
        self.gates = gates
        self.provider = provider
        self.alerter = alerter
        self.options = options
        self.rng = rng or random.Random()

    def admit(self, lead_id: uuid.UUID, now: datetime) -> Verdict:
        connection, lead = self._connect_and_load(lead_id)
        with connection:
            if lead is None:
                return SKIPPED
            early = self._structural_gates(connection, lead, now)
            if isinstance(early, Verdict):
                return early
            return self._capacity_gates_and_dial(connection, lead, early, now)

    def _connect_and_load(self, lead_id: uuid.UUID) -> tuple[Connection, LeadSnapshot | None]:
        """An autocommit connection and the lead's admission view. The engine may skip the
        pool's pre-ping: a connection that died in the pool (PostgreSQL restarted) fails this
        read-only first statement, which is then simply repeated on a fresh one."""
        for last_try in (False, True):
            connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                return connection, load_queued_lead(connection, lead_id)
            except (psycopg.OperationalError, DBAPIError) as exc:
                dead = _connection_is_dead(connection, exc)
                if dead:
                    connection.invalidate()
                connection.close()
                if last_try or not dead:
                    raise
            except BaseException:
                connection.close()
                raise
        raise AssertionError("unreachable")

    # Gates 2-4: calling window, suppression, outbound number (PostgreSQL only).
    def _structural_gates(
        self, connection: Connection, lead: LeadSnapshot, now: datetime
    ) -> Verdict | list[OutboundNumber]:
        zones = recipient_zones(lead.timezone, lead.phone, lead.merchant_timezone, lead.phone_zones)
        opening = next_opening(lead.definition.calling_window, now, zones)
        if opening is None or (lead.deadline is not None and opening >= lead.deadline):
            return self._finish(lead, Outcome.EXPIRED)
        if opening > now:
            return self._defer(lead, opening, DeferralReason.WINDOW_CLOSED)
        if lead.suppressed:
            return self._finish(lead, Outcome.DNC)
        try:
            return outbound_numbers(
                connection, lead.merchant_id, lead.definition.outbound_number, lead.numbers
            )
        except NumberUnavailable as exc:
            verdict = self._finish(lead, Outcome.NUMBER_UNAVAILABLE)
            self.alerter.raise_alert(
                "number_unavailable",
                f"{lead.merchant_id}:{lead.template_id}",
                f"no outbound number for template '{lead.definition.name}': {exc.cause}",
                every_s=self.options.number_unavailable_alert_every_s,
                merchant_id=str(lead.merchant_id),
                template_id=str(lead.template_id),
            )
            return verdict

    def _rate_limit(self, lead: LeadSnapshot) -> tuple[int, int]:
        return (
            lead.rate_limit_calls or self.options.default_rate_limit_calls,
            lead.rate_limit_window_s or self.options.default_rate_limit_window_s,
        )

    # Gates 5-9: rate peek, channel, media slot, rate record (one atomic Redis step), then
    # the attempt row and the dial.
    def _capacity_gates_and_dial(
        self,
        connection: Connection,
        lead: LeadSnapshot,
        numbers: list[OutboundNumber],
        now: datetime,
    ) -> Verdict:
        limit, window_s = self._rate_limit(lead)
        merchant = str(lead.merchant_id)
        attempt_id = uuid.uuid4()
        taken = self.gates.take(
            merchant_id=merchant,
            e164=lead.phone,
            rate_member=str(attempt_id),
            limit=limit,
            window_s=window_s,
            numbers=[GateNumber(str(n.id), n.max_channels) for n in numbers],
            lease_ttl_s=self.options.channel_lease_ttl_s,
            reservation_ttl_s=self.options.media_reservation_ttl_s,
        )
        if isinstance(taken, GateRefused):
            return self._refused(lead, taken, now)
        number = numbers[taken.number_index]
        with ExitStack() as undo:
            undo.callback(self.channels.release, str(number.id), taken.channel_token_id)
            undo.callback(self.slots.release, taken.worker_id, taken.reservation_id)
            undo.callback(self.limiter.forget, merchant, lead.phone, taken.rate_member)
            claim = DialClaim(
                attempt_id,
                number.id,
                taken.channel_token_id,
                taken.worker_id,
                taken.reservation_id,
                taken.stream_url,
            )
            if claim_for_dial(connection, lead.id, claim) is None:
                return SKIPPED
            # The attempt row now owns the channel, slot and window entry.
            undo.pop_all()
        return self._dial(connection, lead, number, claim, now)

    def _refused(self, lead: LeadSnapshot, refused: GateRefused, now: datetime) -> Verdict:
        if refused.reason == "rate_limited":
            until = now + timedelta(milliseconds=refused.retry_after_ms)
            return self._defer(lead, until, DeferralReason.RATE_LIMITED)
        reason = {
            "channels_busy": DeferralReason.CHANNELS_BUSY,
            "media_busy": DeferralReason.MEDIA_BUSY,
        }[refused.reason]
        return self._defer_capacity(lead, now, reason)

    def _dial(
        self,
        connection: Connection,
        lead: LeadSnapshot,
        number: OutboundNumber,
        claim: DialClaim,
        now: datetime,
    ) -> Verdict:
        attempt_id = claim.attempt_id
        token = issue_call_token(
            self.options.call_token_secret, attempt_id=str(attempt_id), lead_id=str(lead.id)
        )
        parameters = {"token": token}
        persona = lead.payload.get("persona")
        if isinstance(persona, str):
            parameters["persona"] = persona  # a simulated callee's script; carriers ignore it
        request = DialRequest(
            to=lead.phone,
            from_=number.e164,
            stream_url=claim.stream_url,
            stream_parameters=parameters,
            status_callback_url=f"{self.options.status_callback_url}?attempt={attempt_id}",
            ring_timeout_s=self.options.ring_timeout_s,
            machine_detection=self.options.machine_detection,
            wait_for_beep=lead.definition.voicemail.action == "leave_message",
        )
        try:
            placed = self.provider.place_call(request)
        except DialOutcomeUnknown as exc:
            # The carrier may have dialed: keep everything leased and let the reconciler
            # ask the carrier before anything is dialed again.
            log.warning("dial_unconfirmed", lead_id=str(lead.id), error=exc.message)
            return Verdict("unconfirmed", DeferralReason.DIAL_UNCONFIRMED, attempt_id)
        except ProviderError as exc:
            return self._dial_refused(lead, claim, exc, now)
        record_dialed(connection, attempt_id, placed.call_sid)
        return Verdict("dialed", None, attempt_id, placed.call_sid)

    def _dial_refused(
        self, lead: LeadSnapshot, claim: DialClaim, exc: ProviderError, now: datetime
    ) -> Verdict:
        """The carrier answered with an error, so no call exists: undo the attempt."""
        attempt_id = claim.attempt_id
        self.channels.release(str(claim.number_id), claim.channel_token_id)
        self.slots.release(claim.media_worker_id, claim.media_reservation_id)
        self.limiter.forget(str(lead.merchant_id), lead.phone, str(attempt_id))
        log.info("dial_refused", lead_id=str(lead.id), retryable=exc.retryable, error=exc.message)
        with transaction(self.sessions) as session:
            abandon_dial(session, attempt_id, lead.id, exc.message)
            if exc.retryable:
                delay = capacity_backoff_s(
                    lead.deferrals,
                    base_s=self.options.provider_backoff_base_s,
                    cap_s=self.options.provider_backoff_cap_s,
                    rng=self.rng,
                )
                until = now + timedelta(seconds=delay)
                defer(session, lead.id, until=until, reason=DeferralReason.PROVIDER_UNAVAILABLE)
                return Verdict("deferred", DeferralReason.PROVIDER_UNAVAILABLE, attempt_id)
            outcome = (
                Outcome.INVALID_PHONE if isinstance(exc, InvalidDestination) else Outcome.FAILED
            )
            finish(session, lead.id, outcome)
            return Verdict("finished", outcome, attempt_id)

    def _finish(self, lead: LeadSnapshot, outcome: Outcome) -> Verdict:
        with transaction(self.sessions) as session:
            finish(session, lead.id, outcome)
        return Verdict("finished", outcome)

    def _defer(self, lead: LeadSnapshot, until: datetime, reason: DeferralReason) -> Verdict:
        with transaction(self.sessions) as session:
            defer(session, lead.id, until=until, reason=reason)
        return Verdict("deferred", reason)

    def _defer_capacity(self, lead: LeadSnapshot, now: datetime, reason: DeferralReason) -> Verdict:
        delay = capacity_backoff_s(
            lead.deferrals,
            base_s=self.options.capacity_backoff_base_s,
            cap_s=self.options.capacity_backoff_cap_s,
            rng=self.rng,
        )
        return self._defer(lead, now + timedelta(seconds=delay), reason)
