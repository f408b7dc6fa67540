"""What the caller hears, as pure state: Twilio's playback buffer for bot audio (with marks
and `clear`) and the tracker that turns played bot audio into turns and response latencies.
Times are milliseconds since the stream started; no I/O here."""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass

from simulator.audio import BYTES_PER_MS, FRAME_BYTES, FRAME_MS, voiced_frames


@dataclass(frozen=True)
class _Mark:
    name: str


class PlaybackBuffer:
    """Bot audio queued for playback, interleaved with marks. `play` takes one frame of audio
    off the front (real time is the caller's business) and returns the marks it reached."""

    def __init__(self) -> None:
        self._items: deque[bytes | _Mark] = deque()
        self._offset = 0  # bytes of the head chunk already played
        self.pending_bytes = 0

    def add_audio(self, audio: bytes) -> None:
        if audio:
            self._items.append(audio)
            self.pending_bytes += len(audio)

    def add_mark(self, name: str) -> None:
        self._items.append(_Mark(name))

    def play(self, size: int = FRAME_BYTES) -> tuple[bytes, list[str]]:
        out = bytearray()
        marks: list[str] = []
        while self._items and len(out) < size:
            head = self._items[0]
            if isinstance(head, _Mark):
                self._items.popleft()
                marks.append(head.name)
                continue
            take = head[self._offset : self._offset + size - len(out)]
            out += take
            self._offset += len(take)
            if self._offset >= len(head):
                self._items.popleft()
                self._offset = 0
        while self._items and isinstance(mark := self._items[0], _Mark):
            self._items.popleft()
            marks.append(mark.name)
        self.pending_bytes -= len(out)
        return bytes(out), marks

    def clear(self) -> tuple[int, list[str]]:
        """Drop all unplayed audio; return the bytes dropped and every pending mark, which
        Twilio sends back when the buffer is cleared."""
        dropped = self.pending_bytes
        marks = [item.name for item in self._items if isinstance(item, _Mark)]
        self._items.clear()
        self._offset = 0
        self.pending_bytes = 0
        return dropped, marks


@dataclass
class BotTurn:
    """One stretch of bot speech. `response_latency_ms` runs from the end of the caller's
    last utterance to the first voiced bot frame received after it."""

    index: int
    started_ms: int
    response_latency_ms: int | None
    audio_ms: int = 0  # all bot audio received during the turn
    played_ms: int = 0  # voiced audio actually played to the caller
    cleared_ms: int = 0  # audio dropped by `clear`
    interrupted: bool = False
    ended_ms: int | None = None
    last_voiced_rx_ms: int = 0
    last_voiced_play_ms: int | None = None

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        del data["last_voiced_rx_ms"], data["last_voiced_play_ms"]
        return data


class BotTurnTracker:
    """A turn opens on the first voiced frame received and closes once nothing voiced has
    been received or played for `gap_ms`. Voiced audio that arrives after the caller spoke
    again opens a new turn even if the old one had not closed yet."""

    def __init__(self, gap_ms: int) -> None:
        self.gap_ms = gap_ms
        self.turns: list[BotTurn] = []
        self.last_customer_end_ms: int | None = None

    @property
    def open_turn(self) -> BotTurn | None:
        if self.turns and self.turns[-1].ended_ms is None:
            return self.turns[-1]
        return None

    def on_received(self, now_ms: int, audio: bytes) -> None:
        turn = self.open_turn
        if any(voiced_frames(audio)):
            after_customer = self.last_customer_end_ms
            if turn and after_customer is not None and turn.last_voiced_rx_ms < after_customer:
                self._close(turn, now_ms)
                turn = None
            if turn is None:
                latency = None if after_customer is None else now_ms - after_customer
                turn = BotTurn(len(self.turns), now_ms, latency, last_voiced_rx_ms=now_ms)
                self.turns.append(turn)
            turn.last_voiced_rx_ms = now_ms
        if turn is not None:
            turn.audio_ms += len(audio) // BYTES_PER_MS

    def on_played(self, now_ms: int, frame: bytes) -> None:
        turn = self.open_turn
        if turn is not None and len(frame) == FRAME_BYTES and voiced_frames(frame)[0]:
            turn.played_ms += FRAME_MS
            turn.last_voiced_play_ms = now_ms

    def on_clear(self, dropped_bytes: int) -> None:
        turn = self.open_turn
        if turn is not None:
            turn.interrupted = True
            turn.cleared_ms += dropped_bytes // BYTES_PER_MS

    def on_customer_end(self, now_ms: int) -> None:
        self.last_customer_end_ms = now_ms

    def tick(self, now_ms: int) -> None:
        turn = self.open_turn
        if turn is None:
            return
        last = max(turn.last_voiced_rx_ms, turn.last_voiced_play_ms or 0)
        if now_ms - last >= self.gap_ms:
            self._close(turn, now_ms)

    def _close(self, turn: BotTurn, now_ms: int) -> None:
        if turn.last_voiced_play_ms is not None:
            turn.ended_ms = turn.last_voiced_play_ms + FRAME_MS
        else:
            turn.ended_ms = min(now_ms, turn.last_voiced_rx_ms + FRAME_MS)

    @property
    def speaking(self) -> bool:
        turn = self.open_turn
        return turn is not None and turn.last_voiced_play_ms is not None

    def replied_since(self, since_ms: int) -> bool:
        """Has a turn that started at or after `since_ms` finished?"""
        return any(t.ended_ms is not None and t.started_ms >= since_ms for t in self.turns)
