"""The persona interpreter: plays a persona's steps against a live caller session."""

from __future__ import annotations

import asyncio
from typing import Protocol

from simulator.personas import Act, Persona, Step


class CallerSession(Protocol):
    """What a script needs from the media stream (implemented by `MediaStreamClient`)."""

    async def say(self, text: str, *, fraction: float = 1.0) -> None:
        """Speak, returning when the last frame of the utterance has been sent."""

    async def play_tone(self, duration_s: float) -> None:
        """Send a tone of `duration_s`, returning when it has been sent."""

    async def wait_for_bot_reply(self, timeout_s: float) -> bool:
        """Wait until the bot has spoken (after the caller's last utterance) and stopped."""

    async def wait_for_bot_speaking(self, timeout_s: float) -> bool:
        """Wait until bot audio is playing."""

    async def send_dtmf(self, digit: str) -> None:
        """Press a key."""


async def run_script(
    persona: Persona, session: CallerSession, *, bot_wait_s: float, linger_s: float
) -> None:
    """Run the steps; returning means the caller hangs up. After the last step the caller
    stays on the line `linger_s` so that the bot (or the API) can end the call first."""
    for step in persona.steps:
        if step.act is Act.HANGUP:
            return
        await _run_step(step, session, bot_wait_s)
    await asyncio.sleep(linger_s)


async def _run_step(step: Step, session: CallerSession, bot_wait_s: float) -> None:
    match step.act:
        case Act.WAIT_BOT:
            await session.wait_for_bot_reply(step.seconds or bot_wait_s)
        case Act.SAY:
            await session.say(step.text, fraction=step.fraction)
        case Act.BARGE_IN:
            if await session.wait_for_bot_speaking(bot_wait_s):
                await asyncio.sleep(step.seconds)
            await session.say(step.text, fraction=step.fraction)
        case Act.PAUSE:
            await asyncio.sleep(step.seconds)
        case Act.DTMF:
            await session.send_dtmf(step.digit)
        case Act.BEEP:
            await session.play_tone(step.seconds)
        case Act.HANGUP:  # handled by run_script; listed so the match is exhaustive
            return
