"""Speaking text with espeak-ng from asyncio: libespeak-ng when it loads, else the binary."""

from __future__ import annotations

import asyncio
import shutil
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass

from shared.speech import libespeak
from shared.speech.errors import EspeakUnavailable, SynthesisError, SynthesisTimeout
from shared.speech.pcm import Speech, speech_from_wav

ESPEAK_BINARY = "espeak-ng"
INSTALL_HINT = (
    "pip install espeakng-loader, or install espeak-ng (Debian: apt-get install espeak-ng)"
)


@dataclass(frozen=True)
class EspeakOptions:
    """How to speak: an espeak voice name (`en`, `en-us`, `en+f3`, ...), a rate, a time limit."""

    voice: str = "en"
    words_per_minute: int = 175
    timeout_s: float = 10.0


class EspeakEngine(ABC):
    """One way of running espeak-ng; `name` is what logs and call records show."""

    name: str

    @abstractmethod
    async def speak(self, text: str, options: EspeakOptions) -> Speech:
        """`text` as PCM at the engine's rate; raises `SynthesisError` (or its subclasses)."""


class LibraryEngine(EspeakEngine):
    """libespeak-ng in a worker thread (`asyncio.to_thread`), so the event loop never waits.

    Syntheses queue on the library's process-wide lock; the queueing counts toward
    `timeout_s`. A timeout or a cancellation (an interruption) returns at once and sets the
    synthesis's abort flag: a synthesis still queued never starts, one in flight stops at its
    next `libespeak.BUFFER_MS` chunk and frees the lock, and its partial audio is dropped.
    """

    def __init__(self, library: libespeak.LibEspeak) -> None:
        self.library = library
        self.name = library.engine

    async def speak(self, text: str, options: EspeakOptions) -> Speech:
        abort = threading.Event()
        try:
            async with asyncio.timeout(options.timeout_s):
                return await asyncio.to_thread(
                    self.library.synthesize,
                    text,
                    voice=options.voice,
                    words_per_minute=options.words_per_minute,
                    abort=abort,
                )
        except TimeoutError as exc:
            raise SynthesisTimeout(self.name, options.timeout_s) from exc
        finally:
            abort.set()  # after a normal return this changes nothing


class BinaryEngine(EspeakEngine):
    """`espeak-ng --stdout --stdin`: the text goes in on stdin (never as an argument), a WAV
    comes back on stdout. The process is killed on timeout or cancellation."""

    name = ESPEAK_BINARY

    def __init__(self, path: str) -> None:
        self.path = path

    async def speak(self, text: str, options: EspeakOptions) -> Speech:
        command = [self.path, "--stdout", "--stdin", "-v", options.voice]
        command += ["-s", str(options.words_per_minute)]
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise SynthesisError(self.name, f"cannot run {self.path}: {exc}") from exc
        try:
            async with asyncio.timeout(options.timeout_s):
                stdout, stderr = await process.communicate(text.encode("utf-8"))
        except TimeoutError as exc:
            raise SynthesisTimeout(self.name, options.timeout_s) from exc
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        if process.returncode != 0:
            detail = stderr.decode("utf-8", "replace").strip()[:200]
            raise SynthesisError(
                self.name, f"{self.name} exited with {process.returncode}: {detail}"
            )
        try:
            return speech_from_wav(stdout)
        except ValueError as exc:
            raise SynthesisError(self.name, f"{self.name} wrote no usable WAV: {exc}") from exc


def find_engine(binary: str | None = None) -> EspeakEngine:
    """The engine to speak with; raises `EspeakUnavailable` when there is none.

    With no `binary`: libespeak-ng from the espeakng-loader package, else `espeak-ng` on PATH.
    A `binary` given is used as asked (a test's fake, a particular build), never the library.
    The first call in a process loads the library (tens of ms); later calls are cheap.
    """
    if binary is not None:
        path = shutil.which(binary)
        if path is None:
            raise EspeakUnavailable(ESPEAK_BINARY, f"{binary!r} is not on PATH")
        return BinaryEngine(path)
    try:
        return LibraryEngine(libespeak.shared_library())
    except EspeakUnavailable as library_error:
        path = shutil.which(ESPEAK_BINARY)
        if path is None:
            raise EspeakUnavailable(
                ESPEAK_BINARY,
                f"no espeak-ng: {library_error}, and {ESPEAK_BINARY!r} is not on PATH "
                f"({INSTALL_HINT})",
            ) from library_error
        return BinaryEngine(path)
