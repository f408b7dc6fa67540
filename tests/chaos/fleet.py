"""`ChaosFleet`: the whole fleet as real processes against the suite's own Redis and database,
seeded, fed leads through the public API, and watched until it settles."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.merchants import create_merchant
from dispatcher.templates_store import save_template
from shared import redis_keys
from shared.db.models import CallAttempt, PhoneNumber
from shared.db.session import make_session_factory, transaction
from shared.enums import AttemptState, NumberProvider
from shared.templates import load_example
from tests.chaos.observe import Observer, Snapshot
from tests.chaos.processes import Launcher, Proc
from tests.chaos.services import ChaosRedis, free_port, wait_until

READY_TIMEOUT_S = 90  # a loaded 2-core CI machine imports pipecat slowly
# Short clocks so that every recovery path runs within a test's deadline (defaults in
# shared/settings.py are 30 s to an hour).
CHAOS_SETTINGS = {
    "CALLFLEET_QUEUED_STALE_S": "4",  # a QUEUED lead whose task died is requeued after this
    "CALLFLEET_DIAL_UNCONFIRMED_GRACE_S": "6",  # above the carrier's slowest create below
    "CALLFLEET_CHANNEL_LEASE_TTL_S": "6",  # media workers renew every third of this
    "CALLFLEET_MEDIA_RESERVATION_TTL_S": "6",
    "CALLFLEET_CONVERSATION_REPORT_GRACE_S": "1",
    "CALLFLEET_CAPACITY_BACKOFF_BASE_S": "0.5",
    "CALLFLEET_CAPACITY_BACKOFF_CAP_S": "3",
    "CALLFLEET_PROVIDER_BACKOFF_BASE_S": "1",
    "CALLFLEET_PROVIDER_BACKOFF_CAP_S": "3",
    "CALLFLEET_MEDIA_HEARTBEAT_INTERVAL_S": "1",
    "CALLFLEET_MEDIA_HEARTBEAT_TTL_S": "3",
    "CALLFLEET_MEDIA_SLOTS": "8",
    "CALLFLEET_MEDIA_DRAIN_TIMEOUT_S": "5",
    "CALLFLEET_RATE_LIMIT_CALLS": "20",
    "CALLFLEET_LOG_LEVEL": "INFO",
    "CALLFLEET_LOG_FORMAT": "json",
}


def lead_payload(persona: str, index: int) -> dict[str, Any]:
    return {
        "customer_name": "Asha",
        "store_name": "Kurta Corner",
        "order_id": f"KC-{index}",
        "amount": 899.0,
        "items": "2 cotton kurtas",
        "delivery_date": (date.today() + timedelta(days=2)).isoformat(),
        "persona": persona,
    }


@dataclass
class ChaosFleet:
    redis_server: ChaosRedis
    engine: Engine
    database_url: str
    log_dir: Path
    api_port: int = field(default_factory=free_port)
    sim_port: int = field(default_factory=free_port)
    api_key: str = ""
    template: str = ""
    number_e164: str = "+14155550100"
    lead_ids: list[str] = field(default_factory=list)
    launcher: Launcher = field(init=False)

    def __post_init__(self) -> None:
        self.launcher = Launcher(self.log_dir, self.child_env())

    @property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    def child_env(self) -> dict[str, str]:
        bin_dir = str(Path(sys.executable).parent)
        return {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_server.url,
            "CALLFLEET_PROVIDER": "twilio",
            "CALLFLEET_TWILIO_API_BASE_URL": self.sim_url,
            "CALLFLEET_PUBLIC_BASE_URL": self.api_url,
            # Celery warns on every start when run as root (as in containers).
            "PYTHONWARNINGS": "ignore:You're running the worker with superuser privileges",
            **CHAOS_SETTINGS,
        }

    # --- bringing it up ------------------------------------------------------------------------

    def seed(self, channels: int = 8) -> None:
        document = load_example("cod_confirmation")
        document["calling_window"] = None  # dial at any hour: the suite runs whenever CI does
        with transaction(self.sessions) as session:
            merchant = create_merchant(session, f"chaos-{uuid.uuid4().hex[:6]}")
            self.api_key = merchant.api_key
            self.template = save_template(session, merchant.id, document).name
            session.add(
                PhoneNumber(
                    e164=self.number_e164,
                    provider=NumberProvider.TWILIO,
                    max_channels=channels,
                    merchant_id=merchant.id,
                )
            )

    def set_channels(self, channels: int) -> None:
        with transaction(self.sessions) as session:
            number = session.scalars(
                select(PhoneNumber).where(PhoneNumber.e164 == self.number_e164)
            ).one()
            number.max_channels = channels

    def attempts_per_lead(self) -> int:
        """The most attempts any lead has had."""
        counts = (
            select(func.count().label("n")).select_from(CallAttempt).group_by(CallAttempt.lead_id)
        ).subquery()
        with self.sessions() as session:
            return int(session.scalar(select(func.max(counts.c.n))) or 0)

    def repeated_events(self) -> int:
        """Attempts whose event log holds one carrier status twice (a duplicate applied)."""
        with self.sessions() as session:
            events = session.scalars(select(CallAttempt.events)).all()
        statuses = [[e.get("status") for e in log if isinstance(e, dict)] for log in events]
        return sum(1 for s in statuses if len(s) != len(set(s)))

    def start_core(self, *, instant: bool, media_workers: tuple[str, ...] = ("mw-a",)) -> None:
        """Carrier, API and media workers (dispatcher workers and beat are up to each test)."""
        self.launcher.simulator(self.sim_port, instant=instant)
        self.launcher.api(self.api_port)
        for name in media_workers:
            self.launcher.media_worker(name, free_port())
        self.wait_ready(media_workers)

    def wait_ready(self, media_workers: tuple[str, ...]) -> None:
        def api_healthy() -> bool:
            return httpx.get(f"{self.api_url}/healthz", timeout=2).status_code == 200

        def carrier_up() -> bool:
            return httpx.get(f"{self.sim_url}/_sim/health", timeout=2).status_code == 200

        wait_until(carrier_up, READY_TIMEOUT_S, "the simulator answers")
        wait_until(api_healthy, READY_TIMEOUT_S, "the API is healthy")
        for name in media_workers:
            wait_until(lambda n=name: self.media_worker_live(n), READY_TIMEOUT_S, f"{name} live")

    def media_worker_live(self, worker_id: str) -> bool:
        client = self.redis_server.client()
        try:
            return client.zscore(redis_keys.media_workers(), worker_id) is not None
        finally:
            client.close()

    def worker(self, name: str, queues: str | None = None) -> Proc:
        return self.launcher.worker(name, queues) if queues else self.launcher.worker(name)

    def beat(self, name: str = "beat") -> Proc:
        return self.launcher.beat(name)

    # --- driving it ----------------------------------------------------------------------------

    def submit(self, personas: list[str]) -> list[str]:
        """One batch through `POST /v1/leads/batch`, one fresh phone number per lead."""
        base = len(self.lead_ids)
        leads = [
            {
                "phone": f"+9198{uuid.uuid4().int % 10**8:08d}",
                "template": self.template,
                "payload": lead_payload(persona, base + i),
                "idempotency_key": f"chaos-{base + i}",
            }
            for i, persona in enumerate(personas)
        ]
        headers = {"Authorization": f"Bearer {self.api_key}"}
        response = httpx.post(
            f"{self.api_url}/v1/leads/batch", json={"leads": leads}, headers=headers, timeout=30
        )
        assert response.status_code in (200, 201), response.text
        ids = [str(row["id"]) for row in response.json()["leads"]]
        self.lead_ids += ids
        return ids

    def faults(self, **knobs: Any) -> None:
        httpx.post(f"{self.sim_url}/_sim/faults", json=knobs, timeout=5).raise_for_status()

    def attempts_in(self, *states: AttemptState, media_worker: str | None = None) -> int:
        query = select(func.count()).select_from(CallAttempt).where(CallAttempt.state.in_(states))
        query = query.where(CallAttempt.finalized_at.is_(None))
        if media_worker is not None:
            query = query.where(CallAttempt.media_worker_id == media_worker)
        with self.sessions() as session:
            return int(session.scalar(query) or 0)

    def in_flight_dials(self) -> int:
        """Attempts committed whose dial has not returned a SID yet (mid-dispatch)."""
        query = (
            select(func.count())
            .select_from(CallAttempt)
            .where(
                CallAttempt.state == AttemptState.CREATED,
                CallAttempt.provider_call_sid.is_(None),
                CallAttempt.finalized_at.is_(None),
            )
        )
        with self.sessions() as session:
            return int(session.scalar(query) or 0)

    def talking_calls(self) -> int:
        """Live calls whose media worker has admitted the stream and spoken (the carrier's
        own report of each call)."""
        talking = 0
        with httpx.Client(base_url=self.sim_url, timeout=5) as client:
            for call in client.get("/_sim/calls").raise_for_status().json():
                report = client.get(f"/_sim/calls/{call['sid']}").raise_for_status().json()
                streams = report["streams"]
                talking += not report["final"] and any(s["bot_media_messages"] for s in streams)
        return talking

    def dialed_count(self) -> int:
        with self.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(CallAttempt)) or 0)

    # --- watching it ---------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        return Observer(self.sessions, self.redis_server.url, self.sim_url).snapshot(self.lead_ids)

    def wait_settled(self, timeout_s: float) -> tuple[Snapshot, float | None]:
        """Poll until every invariant holds (returns the seconds it took) or the deadline
        passes (returns None and the last look, whose violations say what is stuck)."""
        started = time.monotonic()
        snap = self.snapshot()
        while not snap.settled:
            if time.monotonic() - started > timeout_s:
                return snap, None
            time.sleep(0.5)
            try:
                snap = self.snapshot()
            except (httpx.HTTPError, redis.RedisError):
                continue  # the carrier or Redis may be the thing restarting
        return snap, time.monotonic() - started

    def recovery_actions(self) -> dict[str, int]:
        """What the reconciler did, summed from its `reconciled` log events in every worker."""
        totals: dict[str, int] = {}
        for proc in self.launcher.started:
            for line in proc.log_path.read_text(errors="replace").splitlines():
                if '"reconciled"' not in line:
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                for key, value in event.items():
                    if isinstance(value, int) and key != "level":
                        totals[key] = totals.get(key, 0) + value
        return totals

    def stop(self) -> None:
        self.launcher.stop_all()

    def logs(self) -> str:
        return "\n".join(
            f"----- {proc.name} (pid {proc.pid}) -----\n{proc.log_tail()}"
            for proc in self.launcher.started
        )
