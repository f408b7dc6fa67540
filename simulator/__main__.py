"""`python -m simulator`: read arguments and environment once, then serve until signalled."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import Mapping, Sequence

import structlog
from pydantic import SecretStr

from shared.logging import configure_logging
from shared.settings import Settings
from simulator.audio import ESPEAK_AUTO
from simulator.personas import DEFAULT_NUMBER_RULES, parse_pairs
from simulator.server import SimulatorServer
from simulator.settings import DEFAULT_PORT, DEV_ACCOUNT_SID, DEV_AUTH_TOKEN, SimulatorSettings

log = structlog.get_logger(__name__)


def _parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="A local stand-in for Twilio: REST, Media Streams, signed callbacks.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=int(env.get("CALLFLEET_SIMULATOR_PORT", DEFAULT_PORT))
    )
    parser.add_argument(
        "--account-sid", default=env.get("CALLFLEET_TWILIO_ACCOUNT_SID", DEV_ACCOUNT_SID)
    )
    parser.add_argument(
        "--auth-token", default=env.get("CALLFLEET_TWILIO_AUTH_TOKEN", DEV_AUTH_TOKEN)
    )
    parser.add_argument(
        "--instant", action="store_true", help="answer and complete calls at once, without media"
    )
    parser.add_argument(
        "--persona-mix",
        default="",
        help="weighted personas when the TwiML names none, e.g. confirm=5,busy=1",
    )
    parser.add_argument(
        "--number-rules",
        default=None,
        help="dialed-number suffix rules, e.g. 0000=busy,0001=no_answer "
        "(default: 0000..0008 map to the non-confirm personas)",
    )
    parser.add_argument(
        "--redis-url",
        default=env.get("REDIS_URL") or None,
        help="for the `sim` STT side channel; 'none' disables it",
    )
    parser.add_argument(
        "--espeak",
        default=ESPEAK_AUTO,
        help="the caller's voice: 'auto' is libespeak-ng from the espeakng-loader package, "
        "else the espeak-ng binary on PATH; a path is that espeak-ng binary; "
        "'none' is the built-in babble voice",
    )
    parser.add_argument(
        "--ring-s",
        type=float,
        default=None,
        help="ring time for every persona (default: each persona's own)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for --persona-mix")
    return parser


def settings_from(argv: Sequence[str] | None, env: Mapping[str, str]) -> SimulatorSettings:
    args = _parser(env).parse_args(argv)
    try:
        mix = tuple(
            (name, int(weight)) for name, weight in parse_pairs(args.persona_mix, numeric=True)
        )
        rules = (
            DEFAULT_NUMBER_RULES
            if args.number_rules is None
            else parse_pairs(args.number_rules, numeric=False)
        )
    except ValueError as exc:
        _parser(env).error(str(exc))
    return SimulatorSettings(
        host=args.host,
        port=args.port,
        account_sid=args.account_sid,
        auth_token=SecretStr(args.auth_token),
        instant=args.instant,
        persona_mix=mix,
        number_rules=rules,
        seed=args.seed,
        ring_s=args.ring_s,
        redis_url=None if args.redis_url in (None, "", "none") else args.redis_url,
        espeak_binary=None if args.espeak in ("", "none") else args.espeak,
    )


async def serve(settings: SimulatorSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with SimulatorServer(settings):
        await stop.wait()
    log.info("simulator_stopped")


def main(argv: Sequence[str] | None = None) -> None:
    settings = settings_from(argv, os.environ)
    # Logging options (format, level) come from the usual CALLFLEET_* variables; the simulator
    # is never a production process, so production-only checks do not apply to it.
    configure_logging(Settings(env="dev"))
    try:
        SimulatorServer(settings)  # validate persona names before binding anything
    except ValueError as exc:
        raise SystemExit(f"simulator: {exc}") from exc
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
