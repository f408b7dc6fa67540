"""The media worker's PostgreSQL access, run in worker threads so the event loop never
blocks: what a call needs to start, and what it leaves behind when it ends."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.template_cache import definition
from shared.db.models import CallAttempt, Lead
from shared.db.session import transaction
from shared.templates import TemplateDefinition


@dataclass(frozen=True)
class CallContext:
    attempt_id: uuid.UUID
    lead_id: uuid.UUID
    payload: dict[str, Any]
    definition: TemplateDefinition


class CallStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    async def recorded_sid(self, attempt_id: uuid.UUID) -> str | None:
        return await asyncio.to_thread(self._recorded_sid, attempt_id)

    def _recorded_sid(self, attempt_id: uuid.UUID) -> str | None:
        with self._sessions() as session:
            return session.scalar(
                select(CallAttempt.provider_call_sid).where(CallAttempt.id == attempt_id)
            )

    async def load(self, attempt_id: uuid.UUID) -> CallContext | None:
        return await asyncio.to_thread(self._load, attempt_id)

    def _load(self, attempt_id: uuid.UUID) -> CallContext | None:
        with self._sessions() as session:
            row = session.execute(
                select(Lead.id, Lead.payload, Lead.template_id)
                .join(CallAttempt, CallAttempt.lead_id == Lead.id)
                .where(CallAttempt.id == attempt_id)
            ).first()
            if row is None:
                return None
            lead_id, payload, template_id = row
            return CallContext(attempt_id, lead_id, payload, definition(session, template_id))

    async def save_record(
        self, attempt_id: uuid.UUID, transcript: list[Any], events: list[Any]
    ) -> None:
        await asyncio.to_thread(self._save_record, attempt_id, transcript, events)

    def _save_record(self, attempt_id: uuid.UUID, transcript: list[Any], events: list[Any]) -> None:
        """As far as the call got; `ended_at` lets the reconciler close it should the
        finalize message be lost."""
        with transaction(self._sessions) as session:
            attempt = session.get(CallAttempt, attempt_id, with_for_update=True)
            if attempt is None or attempt.finalized_at is not None:
                return
            attempt.transcript = transcript
            attempt.events = [*attempt.events, *events]
            attempt.ended_at = attempt.ended_at or datetime.now(UTC)
