"""The speech exception tree, one root (`SpeechError`) whose `engine` names what failed.

SpeechError
├── EspeakUnavailable     neither libespeak-ng nor an espeak-ng binary can be used here
└── SynthesisError        one synthesis failed (engine status, unknown voice, unreadable WAV)
    ├── SynthesisTimeout  it outlived its `timeout_s`
    └── SynthesisAborted  its abort flag was set (its caller was cancelled or timed out)
"""

from __future__ import annotations


class SpeechError(Exception):
    """Root of the errors `shared.speech` raises on purpose."""

    def __init__(self, engine: str, message: str) -> None:
        super().__init__(message)
        self.engine = engine


class EspeakUnavailable(SpeechError):
    """No espeak engine on this machine: the library does not load and no binary is found."""


class SynthesisError(SpeechError):
    """One text could not be spoken; the engine itself may still work for the next one."""


class SynthesisTimeout(SynthesisError):
    """The synthesis took longer than its `timeout_s`."""

    def __init__(self, engine: str, timeout_s: float) -> None:
        super().__init__(engine, f"{engine} took longer than {timeout_s} s")
        self.timeout_s = timeout_s


class SynthesisAborted(SynthesisError):
    """The synthesis was stopped through its abort flag before it finished."""
