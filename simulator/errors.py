"""The simulator's exception tree, one root with structured fields.

SimulatorError
├── TwilioApiError      a REST request answered the way Twilio answers it (status, code, message)
├── TwimlError          a TwiML document the simulator cannot execute
├── AudioError          audio the simulator cannot read (a WAV from espeak-ng, a bad payload)
└── StreamConnectError  the `<Stream url>` websocket could not be opened
"""

from __future__ import annotations

TWILIO_ERRORS_URL = "https://www.twilio.com/docs/errors/"


class SimulatorError(Exception):
    """Root of every error the simulator raises on purpose."""


class TwilioApiError(SimulatorError):
    """An error response with Twilio's body: `{code, message, more_info, status}`."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @property
    def more_info(self) -> str:
        return f"{TWILIO_ERRORS_URL}{self.code}"

    def body(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": self.more_info,
            "status": self.status,
        }


class TwimlError(SimulatorError):
    """The TwiML is not XML, has no `<Response>` root, or a verb is malformed."""


class AudioError(SimulatorError):
    """Audio bytes that are not what they claim to be."""


class StreamConnectError(SimulatorError):
    """Opening the media worker's websocket failed (refused, bad URL, handshake, timeout)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot open stream {url}: {reason}")
        self.url = url
        self.reason = reason
