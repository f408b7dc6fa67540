"""A dispatcher harness for tests: real PostgreSQL, Redis and admission code, with the
carrier's cloud replaced by the in-process InstantProvider."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import redis
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.admission.options import AdmissionOptions
from dispatcher.admission.pipeline import Admission, Verdict
from dispatcher.alerts import Alerter
from dispatcher.finalization import Finalized, finalize_attempt
from dispatcher.intake.schemas import LeadRequest
from dispatcher.intake.store import ingest
from dispatcher.intake.validate import IntakeLimits
from dispatcher.merchants import create_merchant
from dispatcher.providers import InstantProvider
from dispatcher.reconciler import Reconciler
from dispatcher.sweep import claim_due
from dispatcher.tasks.finalize import release_held
from dispatcher.templates_store import save_template
from shared.coordination import (
    AdmissionGates,
    AlertThrottle,
    ChannelLeases,
    MediaSlots,
    RateLimiter,
)
from shared.db.models import CallAttempt, Lead, PhoneNumber
from shared.db.session import transaction
from shared.enums import NumberProvider, Outcome
from shared.settings import Settings
from shared.templates import load_example

MEDIA_WORKER = "mw-test"
STREAM_URL = "ws://127.0.0.1:9/stream"


def template_document(**changes: Any) -> dict[str, Any]:
    """The COD example, open at all hours unless a test sets a window."""
    document = load_example("cod_confirmation")
    document["calling_window"] = None
    document.update(changes)
    return document


def payload() -> dict[str, Any]:
    return {
        "customer_name": "Asha",
        "store_name": "Kurta Corner",
        "order_id": "KC-1",
        "amount": 899.0,
        "items": "2 kurtas",
        "delivery_date": "2026-12-01",
    }


@dataclass
class Fleet:
    settings: Settings
    sessions: sessionmaker[Session]
    redis: redis.Redis
    provider: InstantProvider = field(default_factory=InstantProvider)
    merchant_id: uuid.UUID = field(default_factory=uuid.uuid4)
    template: str = ""
    number_e164: str = field(default_factory=lambda: f"+1415555{uuid.uuid4().int % 9000 + 1000}")
    alert_posts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def engine(self) -> Engine:
        bind = self.sessions.kw["bind"]
        assert isinstance(bind, Engine)
        return bind

    @property
    def channels(self) -> ChannelLeases:
        return ChannelLeases(self.redis)

    @property
    def slots(self) -> MediaSlots:
        return MediaSlots(self.redis)

    @property
    def limiter(self) -> RateLimiter:
        return RateLimiter(self.redis)

    def setup(self, *, document: dict[str, Any] | None = None, channels: int = 5) -> Fleet:
        with transaction(self.sessions) as session:
            merchant = create_merchant(session, f"m-{uuid.uuid4().hex[:6]}", default_timezone="UTC")
            self.merchant_id = merchant.id
            self.template = save_template(
                session, merchant.id, document or template_document()
            ).name
            if channels:
                session.add(
                    PhoneNumber(
                        e164=self.number_e164,
                        provider=NumberProvider.TWILIO,
                        max_channels=channels,
                        merchant_id=merchant.id,
                    )
                )
        self.advertise_media(slots=50)
        return self

    def advertise_media(self, *, slots: int) -> None:
        self.slots.advertise(MEDIA_WORKER, stream_url=STREAM_URL, slots=slots, heartbeat_ttl_s=300)

    def admission(
        self,
        *,
        limiter: RateLimiter | None = None,
        provider: Any = None,
        engine: Engine | None = None,
        **option_changes: Any,
    ) -> Admission:
        options = AdmissionOptions.from_settings(self.settings)
        if option_changes:
            options = AdmissionOptions(**{**options.__dict__, **option_changes})
        transport = httpx.MockTransport(self._record_alert)
        return Admission(
            engine=engine or self.engine,
            sessions=self.sessions,
            limiter=limiter or self.limiter,
            channels=self.channels,
            slots=self.slots,
            gates=AdmissionGates(self.redis),
            provider=provider or self.provider,
            alerter=Alerter(
                AlertThrottle(self.redis),
                slack_webhook_url="https://hooks.example.test/alerts",
                client=httpx.Client(transport=transport),
            ),
            options=options,
        )

    def _record_alert(self, request: httpx.Request) -> httpx.Response:
        # The Slack-compatible endpoint is a third party: record what it would receive.
        self.alert_posts.append({"url": str(request.url), "body": request.content.decode()})
        return httpx.Response(200)

    def reconciler(self, provider: Any = None, **changes: float) -> Reconciler:
        args: dict[str, float] = {
            "dial_unconfirmed_grace_s": 0,
            "call_max_duration_s": 3600,
            "queued_stale_s": 120,
            "ended_unfinalized_grace_s": 30,
            **changes,
        }
        return Reconciler(
            sessions=self.sessions,
            provider=provider or self.provider,
            channels=self.channels,
            slots=self.slots,
            **args,  # type: ignore[arg-type]
        )

    def add_lead(self, phone: str = "+919812345678", **fields: Any) -> uuid.UUID:
        request = LeadRequest.model_validate(
            {"phone": phone, "template": self.template, "payload": payload(), **fields}
        )
        with transaction(self.sessions) as session:
            [row] = ingest(
                session,
                self.merchant_id,
                [request],
                IntakeLimits.from_settings(self.settings),
                datetime.now(UTC),
            )
        return row.id

    def queue(self) -> list[uuid.UUID]:
        with transaction(self.sessions) as session:
            return claim_due(session, limit=1000)

    def dispatch(
        self, lead_id: uuid.UUID, admission: Admission | None = None, now: datetime | None = None
    ) -> Verdict:
        return (admission or self.admission()).admit(lead_id, now or datetime.now(UTC))

    def finalize(
        self,
        attempt_id: uuid.UUID,
        outcome: Outcome,
        source: str = "carrier",
        record: dict[str, Any] | None = None,
    ) -> Finalized:
        """`record`: a `CallRecord.to_finalize_record()` (transcript and events)."""
        record = record or {}
        with transaction(self.sessions) as session:
            result = finalize_attempt(
                session,
                attempt_id,
                outcome,
                source=source,
                now=datetime.now(UTC),
                transcript=record.get("transcript"),
                events=record.get("events"),
            )
        release_held(self.channels, self.slots, result)
        return result

    def lead(self, lead_id: uuid.UUID) -> Lead:
        with self.sessions() as session:
            lead = session.get(Lead, lead_id)
            assert lead is not None
            return lead

    def attempts(self, lead_id: uuid.UUID) -> list[CallAttempt]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(CallAttempt)
                    .where(CallAttempt.lead_id == lead_id)
                    .order_by(CallAttempt.attempt_no)
                )
            )

    def number_id(self) -> str:
        with self.sessions() as session:
            return str(
                session.scalar(select(PhoneNumber.id).where(PhoneNumber.e164 == self.number_e164))
            )

    def window_entries(self, phone: str) -> int:
        from shared import redis_keys

        return int(self.redis.zcard(redis_keys.rate_window(str(self.merchant_id), phone)))


FleetFactory = Callable[..., Fleet]
