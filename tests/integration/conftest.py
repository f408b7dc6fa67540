"""Fixtures for intake tests: merchants with keys and an active template, and an API client."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.api import create_app
from dispatcher.merchants import create_merchant
from dispatcher.templates_store import save_template
from shared.db.session import transaction
from shared.settings import Settings
from shared.templates import load_example, parse_template

SAMPLE_VALUES: dict[str, Any] = {
    "string": "sample",
    "integer": 3,
    "number": 899.5,
    "boolean": True,
    "date": (date.today() + timedelta(days=2)).isoformat(),
    "datetime": (datetime.now().astimezone() + timedelta(days=2)).isoformat(),
}


@dataclass(frozen=True)
class MerchantFixture:
    id: uuid.UUID
    api_key: str
    template: str
    payload: dict[str, Any]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def lead(self, phone: str = "+14155550123", **extra: Any) -> dict[str, Any]:
        return {"phone": phone, "template": self.template, "payload": dict(self.payload), **extra}


def sample_payload(document: dict[str, Any]) -> dict[str, Any]:
    definition = parse_template(document)
    return {
        name: SAMPLE_VALUES[spec.type]
        for name, spec in definition.variables.items()
        if spec.required
    }


@pytest.fixture
def make_merchant(sessions: sessionmaker[Session]) -> Any:
    def make(name: str = "acme") -> MerchantFixture:
        document = load_example("cod_confirmation")
        with transaction(sessions) as session:
            merchant = create_merchant(session, name, default_timezone="Asia/Kolkata")
            saved = save_template(session, merchant.id, document)
        return MerchantFixture(merchant.id, merchant.api_key, saved.name, sample_payload(document))

    return make


@pytest.fixture
def merchant(make_merchant: Any) -> MerchantFixture:
    result: MerchantFixture = make_merchant()
    return result


@pytest.fixture
def api(
    settings: Settings, sessions: sessionmaker[Session], redis_client: Any
) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client
