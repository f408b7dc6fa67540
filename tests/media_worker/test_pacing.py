"""Outbound audio pacing against a fake clock: the pacer asks to wait exactly as long as
it takes to keep no more than the lead buffered at Twilio."""

from __future__ import annotations

import pytest

from media_worker.transport.pacing import PlayoutPacer


class FakeTime:
    def __init__(self) -> None:
        self.now_s = 100.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now_s

    async def sleep(self, seconds: float) -> None:
        self.waits.append(round(seconds, 6))
        self.now_s += seconds


async def test_sends_within_the_lead_do_not_wait_and_beyond_it_wait_real_time() -> None:
    time = FakeTime()
    pacer = PlayoutPacer(0.2, clock=time.clock, sleep=time.sleep)
    for _ in range(25):  # one second of 40 ms chunks
        await pacer.sent(0.04)
    assert sum(time.waits) == pytest.approx(0.8)  # a second of audio, less the 0.2 s lead
    assert max(time.waits) == pytest.approx(0.04)  # past the lead: one chunk per chunk-time
    assert time.now_s - 100.0 == pytest.approx(0.8)


async def test_an_idle_gap_drains_the_buffer() -> None:
    time = FakeTime()
    pacer = PlayoutPacer(0.2, clock=time.clock, sleep=time.sleep)
    await pacer.sent(0.5)
    assert time.waits == [0.3]
    time.now_s += 10  # nothing sent for a while: Twilio played everything
    await pacer.sent(0.1)
    assert time.waits == [0.3]


async def test_a_clear_forgets_what_was_buffered() -> None:
    time = FakeTime()
    pacer = PlayoutPacer(0.0, clock=time.clock, sleep=time.sleep)
    await pacer.sent(0.04)
    pacer.reset()
    await pacer.sent(0.04)
    assert time.waits == [0.04, 0.04]


def test_a_negative_lead_is_refused() -> None:
    with pytest.raises(ValueError, match="lead_s"):
        PlayoutPacer(-0.1)


async def test_drain_waits_until_what_was_sent_has_played() -> None:
    time = FakeTime()
    pacer = PlayoutPacer(0.2, clock=time.clock, sleep=time.sleep)
    await pacer.sent(0.5)  # waits 0.3 s: 0.2 s still buffered at Twilio
    await pacer.drain()
    assert time.waits == [0.3, 0.2]
    await pacer.drain()  # nothing left to play
    assert time.waits == [0.3, 0.2]
