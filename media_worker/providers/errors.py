"""The provider error tree, rooted at `ProviderError` (see each class for its fields)."""

from __future__ import annotations

from pipecat.utils.errors import ErrorCategory


class ProviderError(Exception):
    """Root of the media worker's provider errors; `provider` is the template's name for it.

    Subclasses:

    - ProviderNotConfigured   a real provider without its key (`key_field`)
    - ProviderUnavailable     a binary, package or model missing from this machine
    - UnknownProvider         a name that is not a template literal for the `role`
    - SynthesisFailed         one TTS request failed (`category`: pipecat ErrorCategory)
    """

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(message)
        self.provider = provider


class ProviderNotConfigured(ProviderError):
    """A real provider was chosen but its API key (`key_field` of `ProviderKeys`) is not set."""

    def __init__(self, provider: str, key_field: str) -> None:
        message = f"provider {provider!r} is not configured: ProviderKeys.{key_field} is not set"
        super().__init__(provider, message)
        self.key_field = key_field


class ProviderUnavailable(ProviderError):
    """A provider's binary, package or model is missing from this machine."""


class UnknownProvider(ProviderError):
    """A provider name that is not one of the template's literals for that role."""

    def __init__(self, role: str, provider: str) -> None:
        super().__init__(provider, f"unknown {role} provider {provider!r}")
        self.role = role


class SynthesisFailed(ProviderError):
    """One synthesis request failed; the TTS reports it as an `ErrorFrame` of `category`."""

    def __init__(self, provider: str, message: str, category: ErrorCategory) -> None:
        super().__init__(provider, message)
        self.category = category
