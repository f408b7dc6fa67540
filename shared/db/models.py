"""The ORM models: PostgreSQL is the source of truth for every lead and attempt."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shared.enums import AttemptState, Direction, LeadStatus, NumberProvider, Outcome

JsonDoc = JSON().with_variant(JSONB(), "postgresql")


def _enum(enum_cls: type[Any], name: str) -> Enum:
    # Stored as checked VARCHAR, not a native PG enum, so adding a value is a one-line migration.
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda cls: [member.value for member in cls],
    )


class Base(DeclarativeBase):
    pass


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class Merchant(TimestampMixin, Base):
    __tablename__ = "merchants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    webhook_url: Mapped[str | None] = mapped_column(Text)
    webhook_secret: Mapped[str] = mapped_column(String(128))
    default_timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    rate_limit_calls: Mapped[int | None] = mapped_column(Integer)
    rate_limit_window_s: Mapped[int | None] = mapped_column(Integer)

    api_keys: Mapped[list[ApiKey]] = relationship(back_populates="merchant")


class ApiKey(TimestampMixin, Base):
    """A merchant API key, stored only as its SHA-256 (keys are 256-bit random)."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    merchant: Mapped[Merchant] = relationship(back_populates="api_keys")


class Template(TimestampMixin, Base):
    __tablename__ = "templates"
    __table_args__ = (
        UniqueConstraint("merchant_id", "name", "version"),
        # At most one active version of a template name per merchant.
        Index(
            "uq_templates_active_name",
            "merchant_id",
            "name",
            unique=True,
            postgresql_where=text("active"),
        ),
        # At most one active orchestrator answers an inbound number (migration 0004).
        Index(
            "uq_templates_inbound_orchestrator",
            "inbound_number",
            unique=True,
            postgresql_where=text("active AND inbound_number IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # An orchestrator's `orchestrator.inbound_number` (E.164), copied out of the document so
    # that the index above can hold it; NULL for every other template.
    inbound_number: Mapped[str | None] = mapped_column(String(20))


class PhoneNumber(TimestampMixin, Base):
    """An outbound (and inbound) number; `merchant_id` NULL means the shared pool."""

    __tablename__ = "phone_numbers"
    __table_args__ = (CheckConstraint("max_channels > 0", name="max_channels_positive"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    e164: Mapped[str] = mapped_column(String(20), unique=True)
    provider: Mapped[NumberProvider] = mapped_column(_enum(NumberProvider, "number_provider"))
    max_channels: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    merchant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("merchants.id", ondelete="SET NULL")
    )
    # The owner's template (by name, so reloading a new version needs no change here) that
    # answers calls to this number; one column, so at most one per number.
    inbound_template: Mapped[str | None] = mapped_column(String(200))


class Lead(TimestampMixin, Base):
    __tablename__ = "leads"
    __table_args__ = (
        UniqueConstraint("merchant_id", "idempotency_key", name="uq_leads_idempotency"),
        CheckConstraint("attempts >= 0 AND attempts <= max_attempts", name="attempts_in_range"),
        # The sweep's query: due scheduled leads, oldest first.
        Index(
            "ix_leads_due",
            "next_attempt_at",
            postgresql_where=text("status = 'SCHEDULED'"),
        ),
        Index("ix_leads_merchant_page", "merchant_id", "created_at", "id"),
        Index("ix_leads_merchant_status_page", "merchant_id", "status", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"))
    template_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("templates.id"))
    direction: Mapped[Direction] = mapped_column(
        _enum(Direction, "direction"), default=Direction.OUTBOUND
    )
    phone: Mapped[str] = mapped_column(String(20))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[LeadStatus] = mapped_column(_enum(LeadStatus, "lead_status"))
    outcome: Mapped[Outcome | None] = mapped_column(_enum(Outcome, "outcome"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    timezone: Mapped[str | None] = mapped_column(String(64))
    # The IANA zones of the phone number, looked up once at intake when `timezone` is not
    # given (NULL: not looked up; admission then looks them up itself).
    phone_zones: Mapped[list[str] | None] = mapped_column(JSONB)
    last_deferral_reason: Mapped[str | None] = mapped_column(String(64))
    # Capacity waits in a row; grows the backoff, reset when a dial goes out.
    deferrals: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    template: Mapped[Template] = relationship()
    call_attempts: Mapped[list[CallAttempt]] = relationship(
        back_populates="lead", order_by="CallAttempt.attempt_no"
    )


class CallAttempt(TimestampMixin, Base):
    """One dial. Created before the provider is asked to dial, so a crash is detectable."""

    __tablename__ = "call_attempts"
    __table_args__ = (UniqueConstraint("lead_id", "attempt_no", name="uq_attempts_lead_no"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    attempt_no: Mapped[int] = mapped_column(Integer)
    number_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("phone_numbers.id"))
    provider_call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    state: Mapped[AttemptState] = mapped_column(_enum(AttemptState, "attempt_state"))
    outcome: Mapped[Outcome | None] = mapped_column(_enum(Outcome, "attempt_outcome"))
    dialed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    transcript: Mapped[list[Any]] = mapped_column(JsonDoc, default=list)
    events: Mapped[list[Any]] = mapped_column(JsonDoc, default=list)
    # What the dispatch took, so finalization and the reconciler can give it back.
    channel_token_id: Mapped[str | None] = mapped_column(String(64))
    media_worker_id: Mapped[str | None] = mapped_column(String(128))
    media_reservation_id: Mapped[str | None] = mapped_column(String(64))
    stream_url: Mapped[str | None] = mapped_column(Text)
    outcome_source: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    finalized_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    lead: Mapped[Lead] = relationship(back_populates="call_attempts")


class WebhookDelivery(TimestampMixin, Base):
    """Outbox row for one merchant webhook; PostgreSQL holds the intent, beat delivers it."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhooks_due", "next_attempt_at", postgresql_where=text("status = 'PENDING'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"))
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    status: Mapped[str] = mapped_column(String(16), default="PENDING")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Suppression(TimestampMixin, Base):
    """Do-not-call entry for one merchant, or for everyone when `merchant_id` is NULL."""

    __tablename__ = "suppressions"
    __table_args__ = (
        Index(
            "uq_suppressions_scope_phone",
            "merchant_id",
            "e164",
            unique=True,
            postgresql_nulls_not_distinct=True,
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    merchant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("merchants.id", ondelete="CASCADE")
    )
    e164: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
