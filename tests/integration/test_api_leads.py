"""The lead intake API over real PostgreSQL: happy paths, every error path, auth isolation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from shared.db.models import Lead
from shared.enums import LeadStatus
from tests.integration.conftest import MerchantFixture


def lead_count(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Lead)) or 0)


def problem_fields(body: dict[str, Any]) -> set[str]:
    return {p["field"] for p in body["error"]["problems"]}


def test_create_then_read_a_lead(api: TestClient, merchant: MerchantFixture) -> None:
    response = api.post("/v1/leads", json=merchant.lead("+1 (415) 555-0123"), headers=merchant.auth)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["phone"] == "+14155550123"
    assert created["status"] == LeadStatus.SCHEDULED
    assert created["next_attempt_at"] is not None
    assert created["max_attempts"] >= 1

    fetched = api.get(f"/v1/leads/{created['id']}", headers=merchant.auth)
    assert fetched.status_code == 200
    assert fetched.json()["payload"] == merchant.payload


def test_not_before_sets_the_schedule(api: TestClient, merchant: MerchantFixture) -> None:
    later = datetime.now(UTC) + timedelta(hours=5)
    response = api.post(
        "/v1/leads", json=merchant.lead(not_before=later.isoformat()), headers=merchant.auth
    )
    assert response.status_code == 201
    assert datetime.fromisoformat(response.json()["next_attempt_at"]) == later


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"phone": "12345"}, "phone"),
        ({"phone": "+1 555 0000"}, "phone"),
        ({"template": "no-such-template"}, "template"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"not_before": "2030-01-01T10:00:00"}, "not_before"),
        ({"deadline": "2001-01-01T10:00:00+00:00"}, "deadline"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 99}, "max_attempts"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_lead_is_422_naming_the_field_and_writes_nothing(
    api: TestClient,
    merchant: MerchantFixture,
    sessions: sessionmaker[Session],
    change: dict[str, Any],
    field: str,
) -> None:
    response = api.post("/v1/leads", json={**merchant.lead(), **change}, headers=merchant.auth)
    assert response.status_code == 422, response.text
    assert field in problem_fields(response.json())
    assert lead_count(sessions) == 0


def test_deadline_must_follow_not_before(api: TestClient, merchant: MerchantFixture) -> None:
    start = datetime.now(UTC) + timedelta(days=2)
    lead = merchant.lead(
        not_before=start.isoformat(), deadline=(start - timedelta(hours=1)).isoformat()
    )
    response = api.post("/v1/leads", json=lead, headers=merchant.auth)
    assert response.status_code == 422
    assert problem_fields(response.json()) == {"deadline"}


def test_payload_missing_and_mistyped_variables(api: TestClient, merchant: MerchantFixture) -> None:
    name = next(iter(merchant.payload))
    missing = merchant.lead()
    del missing["payload"][name]
    response = api.post("/v1/leads", json=missing, headers=merchant.auth)
    assert response.status_code == 422
    assert f"payload.{name}" in problem_fields(response.json())

    mistyped = merchant.lead()
    mistyped["payload"][name] = {"not": "a scalar"}
    response = api.post("/v1/leads", json=mistyped, headers=merchant.auth)
    assert response.status_code == 422
    assert f"payload.{name}" in problem_fields(response.json())


def test_malformed_json_is_400(api: TestClient, merchant: MerchantFixture) -> None:
    response = api.post(
        "/v1/leads",
        content=b'{"phone": ',
        headers={**merchant.auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


def test_oversize_body_is_413(
    api: TestClient, merchant: MerchantFixture, sessions: sessionmaker[Session]
) -> None:
    huge = merchant.lead()
    huge["payload"]["notes"] = "x" * 5_000_000
    response = api.post("/v1/leads", json=huge, headers=merchant.auth)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert lead_count(sessions) == 0


def test_idempotency_key_replays_and_conflicts(
    api: TestClient, merchant: MerchantFixture, sessions: sessionmaker[Session]
) -> None:
    headers = {**merchant.auth, "Idempotency-Key": "order-1"}
    first = api.post("/v1/leads", json=merchant.lead(), headers=headers)
    again = api.post("/v1/leads", json=merchant.lead(), headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]

    other = api.post("/v1/leads", json=merchant.lead("+442079460958"), headers=headers)
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_conflict"
    assert lead_count(sessions) == 1


def test_header_and_body_keys_must_agree(api: TestClient, merchant: MerchantFixture) -> None:
    response = api.post(
        "/v1/leads",
        json=merchant.lead(idempotency_key="a"),
        headers={**merchant.auth, "Idempotency-Key": "b"},
    )
    assert response.status_code == 422
    assert problem_fields(response.json()) == {"idempotency_key"}


def test_keys_are_scoped_per_merchant(api: TestClient, make_merchant: Any) -> None:
    a, b = make_merchant("a"), make_merchant("b")
    ra = api.post("/v1/leads", json=a.lead(), headers={**a.auth, "Idempotency-Key": "k"})
    rb = api.post("/v1/leads", json=b.lead(), headers={**b.auth, "Idempotency-Key": "k"})
    assert (ra.status_code, rb.status_code) == (201, 201)
    assert ra.json()["id"] != rb.json()["id"]


def test_batch_creates_all_rows(api: TestClient, merchant: MerchantFixture) -> None:
    leads = [merchant.lead(f"+1415555{1000 + i:04d}") for i in range(20)]
    response = api.post("/v1/leads/batch", json={"leads": leads}, headers=merchant.auth)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["created"] == 20 and body["existing"] == 0
    assert [row["row"] for row in body["leads"]] == list(range(20))


def test_batch_with_invalid_rows_writes_nothing_and_lists_every_row(
    api: TestClient, merchant: MerchantFixture, sessions: sessionmaker[Session]
) -> None:
    leads = [merchant.lead(f"+1415555{1000 + i:04d}") for i in range(6)]
    leads[1]["phone"] = "nope"
    leads[4]["template"] = "missing"
    leads[5]["extra_field"] = True
    response = api.post("/v1/leads/batch", json={"leads": leads}, headers=merchant.auth)
    assert response.status_code == 422
    rows = {(p["row"], p["field"]) for p in response.json()["error"]["problems"]}
    assert rows == {(1, "phone"), (4, "template"), (5, "extra_field")}
    assert lead_count(sessions) == 0


def test_batch_over_the_limit_is_refused(
    api: TestClient, merchant: MerchantFixture, sessions: sessionmaker[Session]
) -> None:
    leads = [merchant.lead() for _ in range(1001)]
    response = api.post("/v1/leads/batch", json={"leads": leads}, headers=merchant.auth)
    assert response.status_code == 422
    assert problem_fields(response.json()) == {"leads"}
    assert lead_count(sessions) == 0


def test_batch_idempotency_within_and_across_batches(
    api: TestClient, merchant: MerchantFixture, sessions: sessionmaker[Session]
) -> None:
    same = merchant.lead(idempotency_key="k1")
    response = api.post("/v1/leads/batch", json={"leads": [same, same]}, headers=merchant.auth)
    assert response.status_code == 201
    ids = {row["id"] for row in response.json()["leads"]}
    assert len(ids) == 1 and lead_count(sessions) == 1

    replay = api.post("/v1/leads/batch", json={"leads": [same]}, headers=merchant.auth)
    assert replay.status_code == 200
    assert replay.json()["existing"] == 1

    changed = merchant.lead("+442079460958", idempotency_key="k1")
    fresh = merchant.lead("+442079460959", idempotency_key="k2")
    conflict = api.post("/v1/leads/batch", json={"leads": [fresh, changed]}, headers=merchant.auth)
    assert conflict.status_code == 409
    assert [p["row"] for p in conflict.json()["error"]["problems"]] == [1]
    assert lead_count(sessions) == 1  # the valid fresh row was rolled back too

    clash = api.post(
        "/v1/leads/batch",
        json={"leads": [fresh, merchant.lead("+442079460950", idempotency_key="k2")]},
        headers=merchant.auth,
    )
    assert clash.status_code == 409
    assert lead_count(sessions) == 1


@pytest.mark.parametrize("header", [None, "Bearer wrong-key", "Basic abc"])
def test_requests_without_a_valid_key_are_401(
    api: TestClient, merchant: MerchantFixture, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    response = api.post("/v1/leads", json=merchant.lead(), headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_a_merchant_never_sees_another_merchants_leads(api: TestClient, make_merchant: Any) -> None:
    a, b = make_merchant("a"), make_merchant("b")
    lead_id = api.post("/v1/leads", json=a.lead(), headers=a.auth).json()["id"]
    assert api.get(f"/v1/leads/{lead_id}", headers=b.auth).status_code == 404
    assert api.post(f"/v1/leads/{lead_id}/cancel", headers=b.auth).status_code == 404
    assert api.get("/v1/leads", headers=b.auth).json()["leads"] == []
    assert api.get(f"/v1/leads/{lead_id}", headers=a.auth).status_code == 200


def test_listing_pages_through_every_lead_once(api: TestClient, merchant: MerchantFixture) -> None:
    leads = [merchant.lead(f"+1415555{2000 + i:04d}") for i in range(7)]
    created = api.post("/v1/leads/batch", json={"leads": leads}, headers=merchant.auth).json()
    api.post(f"/v1/leads/{created['leads'][0]['id']}/cancel", headers=merchant.auth)

    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = api.get("/v1/leads", params=params, headers=merchant.auth).json()
        seen += [lead["id"] for lead in page["leads"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(row["id"] for row in created["leads"])
    assert len(seen) == len(set(seen))

    scheduled = api.get(
        "/v1/leads", params={"status": "SCHEDULED", "limit": 100}, headers=merchant.auth
    )
    assert len(scheduled.json()["leads"]) == 6
    assert api.get("/v1/leads", params={"cursor": "%%%"}, headers=merchant.auth).status_code == 422
    assert api.get("/v1/leads", params={"status": "NOPE"}, headers=merchant.auth).status_code == 422


def test_cancel_is_idempotent_and_refuses_finished_leads(
    api: TestClient, merchant: MerchantFixture, sessions: sessionmaker[Session]
) -> None:
    lead_id = api.post("/v1/leads", json=merchant.lead(), headers=merchant.auth).json()["id"]
    first = api.post(f"/v1/leads/{lead_id}/cancel", headers=merchant.auth)
    second = api.post(f"/v1/leads/{lead_id}/cancel", headers=merchant.auth)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["status"] == "CANCELLED" and first.json()["outcome"] == "CANCELLED"
    assert first.json()["next_attempt_at"] is None

    other = api.post("/v1/leads", json=merchant.lead(), headers=merchant.auth).json()["id"]
    with sessions.begin() as session:
        lead = session.get(Lead, uuid.UUID(other))
        assert lead is not None
        lead.status = LeadStatus.IN_CALL
    refused = api.post(f"/v1/leads/{other}/cancel", headers=merchant.auth)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "not_cancellable"


def test_unknown_lead_is_404(api: TestClient, merchant: MerchantFixture) -> None:
    response = api.get("/v1/leads/00000000-0000-4000-8000-000000000000", headers=merchant.auth)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_health_and_docs(api: TestClient) -> None:
    health = api.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": "ok", "redis": "ok"}
    assert api.get("/docs").status_code == 200
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/v1/leads", "/v1/leads/batch", "/v1/leads/{lead_id}/cancel"} <= set(paths)
