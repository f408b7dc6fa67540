"""The simulator's options: one frozen dataclass, built at the entrypoint and passed down."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import SecretStr

from simulator.personas import DEFAULT_NUMBER_RULES, Persona

DEV_ACCOUNT_SID = "AC" + "0" * 32
DEV_AUTH_TOKEN = "simulator-auth-token"
DEFAULT_PORT = 8765


@dataclass(frozen=True)
class SimulatorSettings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT  # 0 picks a free port
    account_sid: str = DEV_ACCOUNT_SID
    auth_token: SecretStr = field(default_factory=lambda: SecretStr(DEV_AUTH_TOKEN))
    # Answer and finish calls at once, without media (signed callbacks still go out).
    instant: bool = False
    persona_mix: tuple[tuple[str, int], ...] = ()
    number_rules: tuple[tuple[str, str], ...] = DEFAULT_NUMBER_RULES
    # Extra or replacement personas, by name (tests add scripted ones here).
    personas: Mapping[str, Persona] = field(default_factory=dict)
    seed: int | None = None
    redis_url: str | None = None
    espeak_binary: str | None = None
    speech_ms_per_char: int = 60  # length of the fallback speech when espeak-ng is absent
    ring_s: float | None = None  # overrides every persona's ring time (tests use ~0.05)
    busy_after_s: float = 0.3
    bot_wait_s: float = 15.0  # longest a caller waits for the bot to answer it
    linger_s: float = 20.0  # a caller stays this long after its script, then hangs up
    bot_turn_gap_ms: int = 600  # this much bot silence ends a bot turn
    stream_open_timeout_s: float = 5.0
    callback_timeout_s: float = 5.0
    twiml_fetch_timeout_s: float = 10.0
    hangup_wait_s: float = 2.0  # the update API waits this long for the hang-up to finish
    # Faults at start-up (also settable at run time through `POST /_sim/faults`).
    fail_next_creates: tuple[int, ...] = ()
    duplicate_callbacks: bool = False
    reorder_callbacks: bool = False

    @property
    def token(self) -> str:
        return self.auth_token.get_secret_value()
