"""The media worker's PostgreSQL access, whose I/O never blocks the event loop: what a call
needs to start (an orchestrator's agents too), and what it leaves behind when it ends.

A call's start waits on two reads (the call SID at admission, then the call's context), so
those cost their SELECTs' round trips and no more: in autocommit (no BEGIN or ROLLBACK around
the SELECTs), on an engine that need not pre-ping (a connection the server dropped fails its
first statement, and the read is retried once on a fresh one). With `read_engine` (an asyncio
engine) they run on the event loop itself: in a burst of call starts, reads in worker threads
queued behind each other for the executor and the GIL while the loop sat idle, and that wait
was most of the burst's time to first audio. Their statements and rows are handled on the
loop then (and, once per template version and process, the template's parse). Without one
they run in a worker thread on `sessions`. The call's record is written in a worker thread,
in a transaction."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.template_cache import definition
from dispatcher.templates_store import active_definitions
from media_worker.held import Held
from shared.db.models import CallAttempt, Lead
from shared.db.session import transaction
from shared.templates import TemplateDefinition

log = structlog.get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class CallContext:
    """What a call starts with. `agents`: an orchestrator's agents by agent name, each the
    active version of its template when the call starts (empty for other templates); an agent
    whose template is gone, or became an orchestrator, is left out."""

    attempt_id: uuid.UUID
    lead_id: uuid.UUID
    payload: dict[str, Any]
    definition: TemplateDefinition
    agents: Mapping[str, TemplateDefinition] = field(default_factory=dict)
    # The capacity the attempt holds (channel lease, media reservation), renewed while the
    # call lives; read with the rest, so a call start costs one query, not two.
    held: Held | None = None


class CallStore:
    """`sessions` for the call's record (a transaction); `read_engine` (an asyncio engine, or
    None: a worker thread on `sessions`) for the reads at a call's start, see the module
    docstring."""

    def __init__(
        self, sessions: sessionmaker[Session], *, read_engine: AsyncEngine | None = None
    ) -> None:
        self._sessions = sessions
        self._read_sessions = (
            None if read_engine is None else async_sessionmaker(read_engine, expire_on_commit=False)
        )

    async def recorded_sid(self, attempt_id: uuid.UUID) -> str | None:
        return await self._read(self._recorded_sid, attempt_id)

    async def _read(self, read: Callable[[Session, uuid.UUID], T], attempt_id: uuid.UUID) -> T:
        try:
            return await self._read_once(read, attempt_id)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            log.info("call_store_read_retried", error=type(exc.orig).__name__)
        # Only a read, so trying again on a fresh connection cannot do anything twice.
        return await self._read_once(read, attempt_id)

    async def _read_once(self, read: Callable[[Session, uuid.UUID], T], attempt_id: uuid.UUID) -> T:
        if self._read_sessions is None:
            return await asyncio.to_thread(self._read_in_thread, read, attempt_id)
        async with self._read_sessions() as session:
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            # The same statements as the thread's, their I/O awaited on the loop.
            return await session.run_sync(read, attempt_id)

    def _read_in_thread(self, read: Callable[[Session, uuid.UUID], T], attempt_id: uuid.UUID) -> T:
        with self._sessions() as session:
            session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            return read(session, attempt_id)

    @staticmethod
    def _recorded_sid(session: Session, attempt_id: uuid.UUID) -> str | None:
        return session.scalar(
            select(CallAttempt.provider_call_sid).where(CallAttempt.id == attempt_id)
        )

    async def load(self, attempt_id: uuid.UUID) -> CallContext | None:
        return await self._read(self._load, attempt_id)

    @staticmethod
    def _load(session: Session, attempt_id: uuid.UUID) -> CallContext | None:
        row = session.execute(
            select(
                Lead.id,
                Lead.payload,
                Lead.template_id,
                Lead.merchant_id,
                CallAttempt.number_id,
                CallAttempt.channel_token_id,
                CallAttempt.media_worker_id,
                CallAttempt.media_reservation_id,
            )
            .join(CallAttempt, CallAttempt.lead_id == Lead.id)
            .where(CallAttempt.id == attempt_id)
        ).first()
        if row is None:
            return None
        lead_id, payload, template_id, merchant_id, number_id, *leases = row
        call_definition = definition(session, template_id)
        agents = _agents(session, merchant_id, call_definition)
        held = Held(None if number_id is None else str(number_id), *leases)
        return CallContext(attempt_id, lead_id, payload, call_definition, agents, held)

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


def _agents(
    session: Session, merchant_id: uuid.UUID, call_definition: TemplateDefinition
) -> dict[str, TemplateDefinition]:
    """An orchestrator's agents, loaded with the call so that routing never waits on the
    database (and their voices can be prepared at once)."""
    spec = call_definition.orchestrator
    if spec is None:
        return {}
    found = active_definitions(session, merchant_id, (agent.template for agent in spec.agents))
    agents: dict[str, TemplateDefinition] = {}
    for agent in spec.agents:
        target = found.get(agent.template)
        if target is None or target.orchestrator is not None:
            # Saved fine, changed since: the call goes on with the agents that remain.
            log.warning("agent_unavailable", agent=agent.name, template=agent.template)
            continue
        agents[agent.name] = target
    return agents
