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
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from dispatcher.merchants import create_merchant, issue_api_key, merchant_by_name
from dispatcher.templates_store import save_template
from shared.db import migrate
from shared.db.models import PhoneNumber, Template
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


def start_fleet(settings: Settings, api_port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "CALLFLEET_API_PORT": str(api_port),
        "CALLFLEET_LOG_LEVEL": "WARNING",
    }
    command = ["honcho", "-f", str(ROOT / "Procfile"), "start", "api", "dispatcher"]
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the fleet running")
    args = parser.parse_args()
    settings = Settings()
    migrate.upgrade(settings.database_url)
    say(f"database migrated to {migrate.current(settings.database_url)}")
    merchant_id, api_key, template = seed(settings)
    say(f"merchant {MERCHANT}, number {NUMBER}, template '{template}' ready")

    api_port = free_port()
    base = f"http://127.0.0.1:{api_port}"
    fleet = start_fleet(settings, api_port)
    try:
        wait_healthy(base)
        say(f"fleet up (api, dispatcher) - API at {base}, docs at {base}/docs")
        submit(base, api_key, template)
        submit_via_celery(settings, merchant_id, template)
        subprocess.run(
            [sys.executable, "-m", "dispatcher.cli.main", "status", "--merchant", MERCHANT],
            check=True,
        )
        say("calls are placed by the dispatcher issue's work; leads wait as SCHEDULED until then")
        if args.keep:
            say(f"fleet left running: API {base}  (API key {api_key}); stop it with Ctrl-C")
            fleet.wait()
    finally:
        if fleet.poll() is None:
            os.killpg(fleet.pid, signal.SIGTERM)
            fleet.wait(timeout=30)


if __name__ == "__main__":
    main()
