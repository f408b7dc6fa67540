"""Merchants and their API keys: creation (key shown once) and bearer-key authentication."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db.models import ApiKey, Merchant

KEY_PREFIX = "cfk_"


@dataclass(frozen=True)
class NewMerchant:
    id: uuid.UUID
    name: str
    api_key: str  # shown to the operator once; only its hash is stored


def hash_api_key(api_key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(api_key.encode()).hexdigest()


def issue_api_key(session: Session, merchant_id: uuid.UUID) -> str:
    api_key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiKey(merchant_id=merchant_id, key_hash=hash_api_key(api_key), prefix=api_key[:10])
    )
    return api_key


def create_merchant(
    session: Session,
    name: str,
    *,
    webhook_url: str | None = None,
    default_timezone: str = "UTC",
) -> NewMerchant:
    merchant = Merchant(
        name=name,
        webhook_url=webhook_url,
        webhook_secret=secrets.token_urlsafe(32),
        default_timezone=default_timezone,
    )
    session.add(merchant)
    session.flush()
    return NewMerchant(merchant.id, name, issue_api_key(session, merchant.id))


def merchant_for_key(session: Session, api_key: str) -> uuid.UUID | None:
    return session.scalar(
        select(ApiKey.merchant_id).where(
            ApiKey.key_hash == hash_api_key(api_key), ApiKey.revoked_at.is_(None)
        )
    )


def merchant_by_name(session: Session, name: str) -> Merchant | None:
    return session.scalar(select(Merchant).where(Merchant.name == name))
