"""`make demo`: migrate, seed a demo merchant, run the fleet from the Procfile through honcho,
submit leads through the public API and the Celery task, and print where they stand."""

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
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from dispatcher.merchants import create_merchant, issue_api_key, merchant_by_name
from dispatcher.templates_store import save_template
from shared.db import migrate
from shared.db.models import CallAttempt, Lead, PhoneNumber, Template
from shared.db.session import make_engine, make_session_factory, transaction
from shared.settings import Settings
from shared.templates import load_example

ROOT = Path(__file__).resolve().parents[1]
MERCHANT = "demo-shop"
NUMBER = "+14155550100"
PERSONAS = ["confirm", "decline", "reschedule", "no_answer", "busy", "voicemail", "wrong_person"]
FIRST_NAMES = ["Asha", "Ravi", "Meera", "Arjun", "Kavya", "Rohan", "Priya", "Vikram", "Neha"]


def say(message: str) -> None:
    print(f"demo | {message}", flush=True)


def seed(settings: Settings) -> tuple[str, str, str]:
    """Merchant, number and template; returns (merchant id, fresh API key, template name)."""
    engine = make_engine(settings, pool_size=1)
    with transaction(make_session_factory(engine)) as session:
        merchant = merchant_by_name(session, MERCHANT)
        if merchant is None:
            created = create_merchant(session, MERCHANT, default_timezone="Asia/Kolkata")
            merchant_id, api_key = created.id, created.api_key
        else:
            merchant_id, api_key = merchant.id, issue_api_key(session, merchant.id)
        if session.scalar(select(PhoneNumber.id).where(PhoneNumber.e164 == NUMBER)) is None:
            session.add(
                PhoneNumber(e164=NUMBER, provider="twilio", max_channels=4, merchant_id=merchant_id)
            )
        document = load_example("cod_confirmation")
        active = session.scalar(
            select(Template.name).where(
                Template.merchant_id == merchant_id,
                Template.name == document["name"],
                Template.active.is_(True),
            )
        )
        name = active or save_template(session, merchant_id, document).name
    engine.dispose()
    return str(merchant_id), api_key, name


def sample_leads(template: str, count: int, seed_value: int) -> list[dict[str, Any]]:
    rng = random.Random(seed_value)
    delivery = (date.today() + timedelta(days=2)).isoformat()
    return [
        {
            "phone": f"+9198{rng.randrange(10**7, 10**8)}",
            "template": template,
            "idempotency_key": f"demo-{seed_value}-{i}",
            "payload": {
                "customer_name": rng.choice(FIRST_NAMES),
                "store_name": "Kurta Corner",
                "order_id": f"KC-{seed_value % 10000:04d}-{i:03d}",
                "amount": rng.choice([499.0, 899.0, 1299.0, 2450.0]),
                "items": rng.choice(["2 cotton kurtas", "a silk dupatta", "3 printed tops"]),
                "delivery_date": delivery,
                "persona": PERSONAS[i % len(PERSONAS)],
            },
        }
        for i in range(count)
    ]


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

    @classmethod
    def pick(cls) -> Ports:
        return cls(free_port(), free_port(), free_port(), free_port())


def fleet_env(settings: Settings, ports: Ports) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "CALLFLEET_API_PORT": str(ports.api),
        "CALLFLEET_SIMULATOR_PORT": str(ports.carrier),
        "CALLFLEET_FLOWER_PORT": str(ports.flower),
        "CALLFLEET_MEDIA_PORT": str(ports.media),
        "CALLFLEET_PUBLIC_BASE_URL": f"http://127.0.0.1:{ports.api}",
        "CALLFLEET_TWILIO_API_BASE_URL": f"http://127.0.0.1:{ports.carrier}",
        "CALLFLEET_RUN_DIR": str(ROOT / ".run"),
        "CALLFLEET_LOG_LEVEL": "WARNING",
    }


def start_fleet(settings: Settings, ports: Ports) -> subprocess.Popen[bytes]:
    """Every Procfile entry this build has, through honcho."""
    command = ["honcho", "-f", str(ROOT / "Procfile"), "start"]
    return subprocess.Popen(
        command, cwd=ROOT, env=fleet_env(settings, ports), start_new_session=True
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


def submit(base: str, api_key: str, template: str) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    seed_value = int(time.time())
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        batch = sample_leads(template, 30, seed_value)
        created = client.post("/v1/leads/batch", json={"leads": batch})
        say(
            f"POST /v1/leads/batch (30 leads)            -> {created.status_code}, "
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
        lead_id = created.json()["leads"][0]["id"]
        lead = client.get(f"/v1/leads/{lead_id}").json()
        say(
            f"GET /v1/leads/{{id}}                         -> {lead['status']}, "
            f"next attempt {lead['next_attempt_at']}"
        )


def submit_via_celery(settings: Settings, merchant_id: str, template: str) -> None:
    from dispatcher.celery_factory import create_celery

    app = create_celery(settings)
    leads = sample_leads(template, 5, int(time.time()) + 1)
    result = app.send_task("callfleet.ingest_leads", args=[merchant_id, leads]).get(timeout=60)
    say(f"Celery task callfleet.ingest_leads (5)     -> {result['created']} created")


def report(settings: Settings, merchant_id: str) -> None:
    """Where the leads stand, and why those that wait are waiting."""
    subprocess.run(
        [sys.executable, "-m", "dispatcher.cli.main", "status", "--merchant", MERCHANT], check=True
    )
    engine = make_engine(settings, pool_size=1)
    with make_session_factory(engine)() as session:
        reasons = session.execute(
            select(Lead.last_deferral_reason, func.count(), func.min(Lead.next_attempt_at))
            .where(Lead.merchant_id == uuid.UUID(merchant_id), Lead.status == "SCHEDULED")
            .group_by(Lead.last_deferral_reason)
        ).all()
        dials = session.scalar(
            select(func.count())
            .select_from(CallAttempt)
            .join(Lead, Lead.id == CallAttempt.lead_id)
            .where(Lead.merchant_id == uuid.UUID(merchant_id))
        )
    engine.dispose()
    say(f"call attempts placed: {dials}")
    for reason, count, next_at in reasons:
        say(f"  waiting, {reason or 'not yet due'}: {count} (next try {next_at:%a %H:%M} UTC)")
    if any(reason == "WINDOW_CLOSED" for reason, _, _ in reasons):
        say("  WINDOW_CLOSED: the template calls Mon-Sat 10:00-19:30 in the recipient's own")
        say("  time zone; these leads are dialed when that window next opens.")
    if any(reason == "MEDIA_BUSY" for reason, _, _ in reasons):
        say("  MEDIA_BUSY: every media worker slot is taken; these calls wait for one.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the fleet running")
    parser.add_argument("--settle-s", type=float, default=8, help="wait before the report")
    args = parser.parse_args()
    settings = Settings()
    migrate.upgrade(settings.database_url)
    say(f"database migrated to {migrate.current(settings.database_url)}")
    merchant_id, api_key, template = seed(settings)
    say(f"merchant {MERCHANT}, number {NUMBER}, template '{template}' ready")

    ports = Ports.pick()
    base = f"http://127.0.0.1:{ports.api}"
    fleet = start_fleet(settings, ports)
    try:
        wait_healthy(base)
        say(f"fleet up (api, beat, dispatcher, media, carrier, flower) - API {base}/docs")
        submit(base, api_key, template)
        submit_via_celery(settings, merchant_id, template)
        time.sleep(args.settle_s)  # let beat, the sweep and admission act
        report(settings, merchant_id)
        say(f"Flower: http://127.0.0.1:{ports.flower}  (tasks callfleet.*, args are lead ids)")
        if args.keep:
            say(f"fleet left running: API {base}  (API key {api_key}); stop it with Ctrl-C")
            fleet.wait()
    finally:
        if fleet.poll() is None:
            os.killpg(fleet.pid, signal.SIGTERM)
            fleet.wait(timeout=30)


if __name__ == "__main__":
    main()
