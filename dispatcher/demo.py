"""`make demo`: migrate, seed a demo merchant (numbers, the example templates and the front-desk
orchestrator), run every Procfile entry through honcho, submit about 30 leads with mixed
personas through the public API, show live progress, and end with a report: outcomes,
attempts and retries, deferrals by reason, turn latency, TTS failovers and agent routes."""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.demo_report import build_report, deferral_counts
from dispatcher.merchants import create_merchant, issue_api_key, merchant_by_name
from dispatcher.templates_store import save_template
from media_worker.providers.moonshine_probe import moonshine_support
from shared.db import migrate
from shared.db.models import Lead, PhoneNumber
from shared.db.session import make_engine, make_session_factory, transaction
from shared.fleet_metrics import read_fleet_metrics
from shared.redis_clients import sync_redis
from shared.settings import Settings
from shared.templates import load_example

ROOT = Path(__file__).resolve().parents[1]
MERCHANT = "demo-shop"
NUMBER = "+14155550100"
# The merchant's pool, and the number the appointment example pins as its caller id.
NUMBERS = {NUMBER: 8, "+912261234500": 4}
# Which simulated callees each template meets: every persona of the carrier over the run.
PERSONAS: dict[str, tuple[str, ...]] = {
    "cod_confirmation": (
        "confirm", "decline", "reschedule", "no_answer", "busy", "voicemail", "wrong_person",
        "hangup_mid", "barge_in", "silent", "confirm", "confirm",
    ),
    "appointment_reminder": ("confirm", "reschedule", "no_answer", "confirm"),
    "front_desk": ("front_desk_order", "front_desk_appointment"),
}  # fmt: skip
FIRST_NAMES = ["Asha", "Ravi", "Meera", "Arjun", "Kavya", "Rohan", "Priya", "Vikram", "Neha"]


def say(message: str) -> None:
    print(f"demo | {message}", flush=True)


# The demo calls at any hour and retries once within the run; the shipped examples keep
# their real calling windows and hour-long retry intervals.
DEMO_TEMPLATES = ("cod_confirmation", "appointment_reminder", "front_desk")
DEMO_RETRY_INTERVALS_S = [60]  # the shortest a template may ask for


def demo_document(example: str) -> dict[str, Any]:
    document = load_example(example)
    document["calling_window"] = None
    retry_policy = document["retry_policy"]
    assert isinstance(retry_policy, dict)
    document["retry_policy"] = {
        **retry_policy,
        "intervals_s": DEMO_RETRY_INTERVALS_S,
        "max_attempts": 2,
    }
    return document


def seed(settings: Settings) -> tuple[str, str, dict[str, str]]:
    """Merchant, number and templates; returns (merchant id, fresh API key, template names
    by example)."""
    engine = make_engine(settings, pool_size=1)
    with transaction(make_session_factory(engine)) as session:
        merchant = merchant_by_name(session, MERCHANT)
        if merchant is None:
            created = create_merchant(session, MERCHANT, default_timezone="Asia/Kolkata")
            merchant_id, api_key = created.id, created.api_key
        else:
            merchant_id, api_key = merchant.id, issue_api_key(session, merchant.id)
        for e164, channels in NUMBERS.items():
            if session.scalar(select(PhoneNumber.id).where(PhoneNumber.e164 == e164)) is None:
                session.add(
                    PhoneNumber(
                        e164=e164, provider="twilio", max_channels=channels, merchant_id=merchant_id
                    )
                )
        # Agents first: saving the orchestrator checks they exist for this merchant.
        names = {
            example: save_template(session, merchant_id, demo_document(example)).name
            for example in DEMO_TEMPLATES
        }
    engine.dispose()
    return str(merchant_id), api_key, names


def _payload(example: str, i: int, rng: random.Random, seed_value: int) -> dict[str, Any]:
    delivery = (date.today() + timedelta(days=2)).isoformat()
    order = {
        "customer_name": rng.choice(FIRST_NAMES),
        "store_name": "Kurta Corner",
        "order_id": f"KC-{seed_value % 10000:04d}-{i:03d}",
        "amount": rng.choice([499.0, 899.0, 1299.0, 2450.0]),
        "items": rng.choice(["2 cotton kurtas", "a silk dupatta", "3 printed tops"]),
        "delivery_date": delivery,
    }
    visit = {
        "patient_name": rng.choice(FIRST_NAMES),
        "clinic_name": "Lotus Clinic",
        "doctor_name": "Dr. Iyer",
        "appointment_at": f"{delivery}T10:30:00+05:30",
        "booking_ref": f"LC-{i:04d}",
    }
    if example == "cod_confirmation":
        return order
    if example == "appointment_reminder":
        return visit
    return {**order, **visit}  # the front desk's agents render from the same payload


def sample_leads(templates: dict[str, str], count: int, seed_value: int) -> list[dict[str, Any]]:
    """`count` leads spread over the templates, each with the simulator persona to play."""
    rng = random.Random(seed_value)
    plan = [(example, persona) for example, personas in PERSONAS.items() for persona in personas]
    leads = []
    for i in range(count):
        example, persona = plan[i % len(plan)]
        leads.append(
            {
                "phone": f"+9198{rng.randrange(10**7, 10**8)}",
                "template": templates[example],
                "idempotency_key": f"demo-{seed_value}-{i}",
                "payload": {**_payload(example, i, rng, seed_value), "persona": persona},
            }
        )
    return leads


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Ports:
    api: int
    carrier: int
    flower: int
    media: int
    media_realistic: int

    @classmethod
    def pick(cls) -> Ports:
        return cls(free_port(), free_port(), free_port(), free_port(), free_port())


def fleet_env(settings: Settings, ports: Ports, *, realistic: bool = True) -> dict[str, str]:
    """The fleet's environment; without the realistic worker, the fast one takes its slots."""
    fast_slots = FAST_MEDIA_SLOTS + (0 if realistic else REALISTIC_MEDIA_SLOTS)
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "CALLFLEET_API_PORT": str(ports.api),
        "CALLFLEET_SIMULATOR_PORT": str(ports.carrier),
        "CALLFLEET_FLOWER_PORT": str(ports.flower),
        "CALLFLEET_MEDIA_PORT": str(ports.media),
        "CALLFLEET_MEDIA_ARGS": FAST_MEDIA_ARGS,
        "CALLFLEET_MEDIA_SLOTS": str(fast_slots),
        "CALLFLEET_PUBLIC_BASE_URL": f"http://127.0.0.1:{ports.api}",
        "CALLFLEET_TWILIO_API_BASE_URL": f"http://127.0.0.1:{ports.carrier}",
        "CALLFLEET_RUN_DIR": str(ROOT / ".run"),
        "CALLFLEET_LOG_LEVEL": "WARNING",
        # Answering machines are detected, so the voicemail persona ends VOICEMAIL.
        "CALLFLEET_MACHINE_DETECTION": "true",
    }


# The `media` entry runs the fast offline stack (sim STT, tone voice) with a primary voice
# that fails now and then, so TTS failover shows; a second, small media worker runs the
# realistic offline stack (Silero VAD, moonshine STT, espeak), so a few calls go through
# real speech recognition. Dispatch fills the worker with the most free slots first.
FAST_MEDIA_ARGS = "--providers offline --tts-fail-probability 0.3"
FAST_MEDIA_SLOTS, REALISTIC_MEDIA_SLOTS = 8, 3


def demo_procfile(ports: Ports, *, realistic: bool = True, run_dir: Path = ROOT / ".run") -> Path:
    """The project's Procfile, plus the realistic media worker when `realistic`, in `run_dir`."""
    extra = (
        f"media_realistic: CALLFLEET_MEDIA_PORT={ports.media_realistic} "
        f"CALLFLEET_MEDIA_SLOTS={REALISTIC_MEDIA_SLOTS} "
        "python -m media_worker --providers realistic\n"
        if realistic
        else ""
    )
    path = run_dir / "Procfile.demo"
    path.parent.mkdir(exist_ok=True)
    path.write_text((ROOT / "Procfile").read_text(encoding="utf-8") + extra, encoding="utf-8")
    return path


def start_fleet(
    settings: Settings, ports: Ports, *, realistic: bool = True
) -> subprocess.Popen[bytes]:
    """Every Procfile entry this build has, through honcho."""
    procfile = demo_procfile(ports, realistic=realistic)
    command = ["honcho", "-f", str(procfile), "-d", str(ROOT), "start"]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=fleet_env(settings, ports, realistic=realistic),
        start_new_session=True,
    )


def wait_healthy(base: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("demo | the API did not become healthy; see the honcho output above")


def submit(base: str, api_key: str, templates: dict[str, str], count: int) -> list[uuid.UUID]:
    """The run's leads through the public API (plus the API's refusals, shown once);
    returns their ids."""
    headers = {"Authorization": f"Bearer {api_key}"}
    seed_value = int(time.time())
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        batch = sample_leads(templates, count, seed_value)
        created = client.post("/v1/leads/batch", json={"leads": batch})
        if created.status_code != 201:
            raise SystemExit(f"demo | the batch was refused: {created.status_code} {created.text}")
        say(
            f"POST /v1/leads/batch ({count} leads)            -> {created.status_code}, "
            f"{created.json()['created']} created"
        )
        replay = client.post("/v1/leads/batch", json={"leads": batch[:5]})
        say(
            f"same 5 leads again (idempotency keys)      -> {replay.status_code}, "
            f"{replay.json()['existing']} already present"
        )
        broken = [dict(batch[0], phone="12345", idempotency_key="x"), {"phone": "+14155550123"}]
        refused = client.post("/v1/leads/batch", json={"leads": broken})
        problems = refused.json()["error"]["problems"]
        say(
            f"a batch with 2 bad rows                    -> {refused.status_code}, "
            f"{len(problems)} problems, nothing written"
        )
        for problem in problems[:3]:
            say(f"    row {problem['row']}: {problem['field']}: {problem['message']}")
    return [uuid.UUID(lead["id"]) for lead in created.json()["leads"]]


def statuses(sessions: sessionmaker[Session], lead_ids: list[uuid.UUID]) -> Counter[str]:
    with sessions() as session:
        rows = session.execute(select(Lead.status).where(Lead.id.in_(lead_ids))).scalars()
        return Counter(str(status) for status in rows)


def follow(
    sessions: sessionmaker[Session], lead_ids: list[uuid.UUID], timeout_s: float
) -> Counter[str]:
    """Live progress until every lead is finished or `timeout_s` passes."""
    started = time.monotonic()
    last: Counter[str] = Counter()
    while True:
        now = statuses(sessions, lead_ids)
        elapsed = time.monotonic() - started
        if now != last:
            summary = ", ".join(f"{status} {n}" for status, n in sorted(now.items()))
            say(f"t+{elapsed:5.1f}s  {summary}")
            last = now
        if now.get("FINISHED", 0) == len(lead_ids) or elapsed > timeout_s:
            return now
        time.sleep(1)


def dispatch_counts(client: redis.Redis) -> dict[tuple[str, str], float]:
    families = {family.name: family for family in read_fleet_metrics(client)}
    return {
        (sample.labels["action"], sample.labels["reason"]): sample.value
        for sample in families["callfleet_dispatches"].samples
        if sample.name.endswith("_total")
    }


def report(
    sessions: sessionmaker[Session],
    lead_ids: list[uuid.UUID],
    before: dict[tuple[str, str], float],
    after: dict[tuple[str, str], float],
) -> None:
    during = {key: after.get(key, 0) - before.get(key, 0) for key in after}
    with sessions() as session:
        run = build_report(session, lead_ids, deferral_counts(during))
    say("report for this run's leads")
    for line in run.lines():
        say(f"  {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the fleet running")
    parser.add_argument("--leads", type=int, default=30, help="leads to submit")
    parser.add_argument("--timeout-s", type=float, default=150, help="how long to follow them")
    args = parser.parse_args()
    settings = Settings()
    migrate.upgrade(settings.database_url)
    say(f"database migrated to {migrate.current(settings.database_url)}")
    merchant_id, api_key, templates = seed(settings)
    say(f"merchant {MERCHANT}, numbers {', '.join(NUMBERS)}")
    say(f"templates {', '.join(sorted(templates.values()))}")

    engine = make_engine(settings, pool_size=2)
    sessions = make_session_factory(engine)
    metrics_redis = sync_redis(settings.redis_url)
    ports = Ports.pick()
    base = f"http://127.0.0.1:{ports.api}"
    # The realistic worker's moonshine STT does not run on every CPU (see moonshine_probe):
    # without it, every call takes the fast stack rather than the fleet stopping.
    moonshine = moonshine_support()
    if not moonshine.runs:
        say(f"no realistic media worker: {moonshine.reason}; every call uses the fast stack")
    fleet = start_fleet(settings, ports, realistic=moonshine.runs)
    try:
        wait_healthy(base)
        realistic = ", media_realistic" if moonshine.runs else ""
        say(
            f"fleet up (api, beat, dispatcher, media{realistic}, carrier, flower) - API {base}/docs"
        )
        before = dispatch_counts(metrics_redis)
        lead_ids = submit(base, api_key, templates, args.leads)
        final = follow(sessions, lead_ids, args.timeout_s)
        if final.get("FINISHED", 0) < len(lead_ids):
            say("not every lead finished in time; the report shows where they stand")
        time.sleep(1.5)  # the dispatchers' counters reach Redis within a second
        report(sessions, lead_ids, before, dispatch_counts(metrics_redis))
        say(f"Flower: http://127.0.0.1:{ports.flower}/tasks  (callfleet.* tasks; args are ids)")
        say(f"Prometheus: {base}/metrics")
        if args.keep:
            say(f"fleet left running: API {base}/docs  (API key {api_key}); Ctrl-C stops it")
            fleet.wait()
    finally:
        if fleet.poll() is None:
            os.killpg(fleet.pid, signal.SIGTERM)
            fleet.wait(timeout=30)
        metrics_redis.close()
        engine.dispose()


if __name__ == "__main__":
    main()
