"""Call providers (carriers): the `CallProvider` contract, its error tree, and the backends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from pydantic import SecretStr

from dispatcher.providers.base import (
    FINAL_CALL_STATUSES,
    INVALID_DESTINATION_CODES,
    CallProvider,
    DialOutcomeUnknown,
    DialRequest,
    FoundCall,
    InvalidDestination,
    PlacedCall,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
)
from dispatcher.providers.instant import InstantProvider
from dispatcher.providers.twilio import TwilioProvider

if TYPE_CHECKING:
    from shared.settings import Settings

__all__ = [
    "FINAL_CALL_STATUSES",
    "INVALID_DESTINATION_CODES",
    "CallProvider",
    "DialOutcomeUnknown",
    "DialRequest",
    "FoundCall",
    "InstantProvider",
    "InvalidDestination",
    "PlacedCall",
    "ProviderError",
    "ProviderOptions",
    "ProviderRejected",
    "ProviderUnavailable",
    "TwilioProvider",
    "provider_from_options",
]


@dataclass(frozen=True)
class ProviderOptions:
    """Which carrier to dial through. `auth_token` is a `SecretStr`: it prints as stars."""

    kind: Literal["twilio", "instant"]
    account_sid: str = ""
    auth_token: SecretStr = field(default=SecretStr(""))
    api_base_url: str | None = None
    request_timeout_s: float = 10

    @classmethod
    def from_settings(cls, settings: Settings) -> ProviderOptions:
        return cls(
            kind=settings.provider,
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            api_base_url=settings.twilio_api_base_url,
        )


def provider_from_options(options: ProviderOptions) -> CallProvider:
    if options.kind == "instant":
        return InstantProvider()
    if not options.account_sid or not options.auth_token.get_secret_value():
        raise ValueError("the twilio provider needs an account SID and an auth token")
    return TwilioProvider(
        options.account_sid,
        options.auth_token.get_secret_value(),
        api_base_url=options.api_base_url,
        request_timeout_s=options.request_timeout_s,
    )
