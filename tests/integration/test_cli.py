"""The `callfleet` admin CLI over real PostgreSQL: round trips and one-line errors."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from dispatcher.cli.main import app
from dispatcher.merchants import merchant_for_key
from shared.db.models import Lead, PhoneNumber, Template
from shared.settings import Settings
from shared.templates import load_example
from tests.integration.conftest import MerchantFixture
from tests.integration.inbound_templates import inbound_ready


@pytest.fixture
def cli(settings: Settings, sessions: sessionmaker[Session]) -> Any:
    runner = CliRunner()
    env = {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url}

    def run(*args: str) -> Any:
        return runner.invoke(app, list(args), env=env)

    return run


def count(sessions: sessionmaker[Session], model: type[Any]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_merchant_create_prints_a_working_key_once(
    cli: Any, sessions: sessionmaker[Session]
) -> None:
    result = cli("merchants", "create", "shop", "--timezone", "Asia/Kolkata")
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1].rsplit(" ", 1)[-1]
    with sessions() as session:
        assert merchant_for_key(session, key) is not None

    again = cli("merchants", "create", "shop")
    assert again.exit_code == 1
    assert "already exists" in again.output


def test_merchant_create_refuses_insecure_webhook_urls(cli: Any) -> None:
    for url in ("http://merchant.example/hooks", "https://127.0.0.1/hooks", "ftp://x/y"):
        result = cli("merchants", "create", "shop", "--webhook-url", url)
        assert result.exit_code == 1 and "webhook URL refused" in result.output
    assert cli("merchants", "list").output.strip() == ""


def test_merchant_create_rejects_unknown_timezone(cli: Any) -> None:
    result = cli("merchants", "create", "shop", "--timezone", "Nowhere/Land")
    assert result.exit_code == 1
    assert "IANA" in result.output


def test_numbers_add_and_its_errors(cli: Any, sessions: sessionmaker[Session]) -> None:
    assert cli("merchants", "create", "shop").exit_code == 0
    ok = cli("numbers", "add", "+14155550100", "--channels", "4", "--merchant", "shop")
    assert ok.exit_code == 0, ok.output
    shared = cli("numbers", "add", "+14155550101", "--channels", "2")
    assert shared.exit_code == 0
    with sessions() as session:
        numbers = {n.e164: n for n in session.scalars(select(PhoneNumber))}
    assert numbers["+14155550100"].max_channels == 4
    assert numbers["+14155550100"].merchant_id is not None
    assert numbers["+14155550101"].merchant_id is None

    assert cli("numbers", "add", "+14155550100", "--channels", "1").exit_code == 1
    assert cli("numbers", "add", "not-a-number", "--channels", "1").exit_code == 1
    assert (
        cli("numbers", "add", "+14155550102", "--channels", "1", "--merchant", "x").exit_code == 1
    )
    assert cli("numbers", "add", "+14155550103", "--channels", "0").exit_code == 2
    assert count(sessions, PhoneNumber) == 2


def load_template(cli: Any, tmp_path: Path, document: dict[str, Any]) -> None:
    path = tmp_path / "template.json"
    path.write_text(json.dumps(document))
    result = cli("templates", "load", str(path), "--merchant", "shop")
    assert result.exit_code == 0, result.output


def test_numbers_add_checks_the_inbound_template(
    cli: Any, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    assert cli("merchants", "create", "shop").exit_code == 0
    load_template(cli, tmp_path, load_example("cod_confirmation"))
    add = ("numbers", "add", "--channels", "1", "--merchant", "shop", "--inbound-template")

    missing = cli(*add, "Front desk", "+14155550110")
    assert missing.exit_code == 1
    assert "no active template named 'Front desk'" in missing.output
    needs_payload = cli(*add, "COD order confirmation", "+14155550111")
    assert needs_payload.exit_code == 1
    needed = "needs amount, customer_name, delivery_date, items, order_id, store_name with"
    assert needed in needs_payload.output
    assert count(sessions, PhoneNumber) == 0

    load_template(cli, tmp_path, inbound_ready(load_example("cod_confirmation")))
    ok = cli(*add, "COD order confirmation", "+14155550111")
    assert ok.exit_code == 0, ok.output
    with sessions() as session:
        number = session.scalar(select(PhoneNumber))
    assert number is not None and number.inbound_template == "COD order confirmation"


def test_templates_load_versions_and_rejects_invalid(
    cli: Any, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    assert cli("merchants", "create", "shop").exit_code == 0
    good = tmp_path / "t.json"
    good.write_text(json.dumps(load_example("cod_confirmation")))
    assert cli("templates", "load", str(good), "--merchant", "shop").exit_code == 0
    second = cli("templates", "load", str(good), "--merchant", "shop")
    assert second.exit_code == 0 and "v2" in second.output
    with sessions() as session:
        versions = session.execute(select(Template.version, Template.active)).all()
    assert sorted(versions) == [(1, False), (2, True)]

    broken = load_example("cod_confirmation")
    broken["initial_node"] = "nowhere"
    broken["retry_policy"] = {"max_attempts": 0}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(broken))
    result = cli("templates", "load", str(bad), "--merchant", "shop")
    assert result.exit_code == 1
    assert "initial_node" in result.output and "max_attempts" in result.output

    (tmp_path / "junk.json").write_text("{not json")
    junk = cli("templates", "load", str(tmp_path / "junk.json"), "--merchant", "shop")
    assert junk.exit_code == 1 and "not valid JSON" in junk.output
    assert count(sessions, Template) == 2


def _csv_file(path: Path, merchant: MerchantFixture, phones: list[str]) -> Path:
    columns = ["phone", "template", *(f"payload.{name}" for name in merchant.payload)]
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        for phone in phones:
            values = [
                json.dumps(v) if not isinstance(v, str) else v for v in merchant.payload.values()
            ]
            writer.writerow([phone, merchant.template, *values])
    return path


def test_leads_import_csv_is_idempotent_per_file(
    cli: Any, merchant: MerchantFixture, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    phones = [f"+1415555{4000 + i:04d}" for i in range(25)]
    path = _csv_file(tmp_path / "leads.csv", merchant, phones)
    first = cli("leads", "import", str(path), "--merchant", "acme", "--chunk", "10")
    assert first.exit_code == 0, first.output
    assert "25 new" in first.output
    again = cli("leads", "import", str(path), "--merchant", "acme")
    assert again.exit_code == 0 and "0 new, 25 already present" in again.output
    assert count(sessions, Lead) == 25


def test_leads_import_jsonl(
    cli: Any, merchant: MerchantFixture, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "leads.jsonl"
    path.write_text(
        "\n".join(json.dumps(merchant.lead(f"+1415555{5000 + i:04d}")) for i in range(5)) + "\n"
    )
    result = cli("leads", "import", str(path), "--merchant", "acme")
    assert result.exit_code == 0, result.output
    assert count(sessions, Lead) == 5


def test_leads_import_with_bad_rows_reports_each_and_writes_nothing(
    cli: Any, merchant: MerchantFixture, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    rows = [merchant.lead(f"+1415555{6000 + i:04d}") for i in range(5)]
    rows[1]["phone"] = "bogus"
    rows[3]["template"] = "missing"
    path = tmp_path / "leads.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n")
    errors = tmp_path / "errors.jsonl"
    result = cli("leads", "import", str(path), "--merchant", "acme", "--errors", str(errors))
    assert result.exit_code == 1
    assert "line 2: phone" in result.output and "line 4: template" in result.output
    assert "line 6" in result.output
    assert "3 of 6 rows are invalid; nothing was imported" in result.output
    assert {json.loads(line)["row"] for line in errors.read_text().splitlines()} == {2, 4, 6}
    assert count(sessions, Lead) == 0


def test_leads_import_refuses_unknown_columns_and_formats(
    cli: Any, merchant: MerchantFixture, tmp_path: Path
) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("phone,template,colour\n+14155550123,x,red\n")
    assert cli("leads", "import", str(path), "--merchant", "acme").exit_code == 1
    other = tmp_path / "leads.xlsx"
    other.write_text("whatever")
    assert cli("leads", "import", str(other), "--merchant", "acme").exit_code == 1
    assert cli("leads", "import", str(tmp_path / "absent.csv"), "--merchant", "acme").exit_code == 1


def test_status_counts_leads(cli: Any, merchant: MerchantFixture, tmp_path: Path) -> None:
    path = _csv_file(tmp_path / "leads.csv", merchant, ["+14155557000", "+14155557001"])
    assert cli("leads", "import", str(path), "--merchant", "acme").exit_code == 0
    result = cli("status")
    assert result.exit_code == 0
    row = next(line for line in result.output.splitlines() if "SCHEDULED" in line)
    assert row.split("│")[-2].strip() == "2"


def test_real_entrypoint_fails_with_one_readable_line(settings: Settings) -> None:
    env = {**os.environ, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    result = subprocess.run(
        [sys.executable, "-m", "dispatcher.cli.main", "status"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot reach the database" in lines[0]
    assert "Traceback" not in result.stderr
