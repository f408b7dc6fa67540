"""`LibEspeak`: a ctypes binding over libespeak-ng's C API that speaks text as 16-bit PCM."""

from __future__ import annotations

import array
import ctypes
import importlib
import os
import sys
import threading
from typing import Any

from shared.speech.errors import EspeakUnavailable, SynthesisAborted, SynthesisError
from shared.speech.pcm import Speech

ENGINE = "libespeak-ng"
LOADER_PACKAGE = "espeakng_loader"  # the espeakng-loader wheel: the library and its data
BUFFER_MS = 100  # audio per callback, so also how soon an abort takes effect

# From speak_lib.h (stable since espeak 1.48).
_AUDIO_OUTPUT_SYNCHRONOUS = 2  # espeak_Synth returns when done, calling back on this thread
_INITIALIZE_DONT_EXIT = 0x8000  # report a missing data file instead of calling exit()
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000  # a pause at the end of the text, as the espeak-ng binary adds
_SYNTH_FLAGS = _CHARS_UTF8 | _ENDPAUSE  # no espeakSSML, no espeakPHONEMES: text is only text
_POS_CHARACTER = 1
_RATE = 1  # espeakRATE, in words per minute
_EE_OK = 0
_EE_NOT_FOUND = 2

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _Sink:
    """Where the callback puts the audio of the synthesis that holds `_LOCK`."""

    def __init__(self, abort: threading.Event | None) -> None:
        self.chunks: list[bytes] = []
        self.abort = abort


# libespeak-ng keeps one synthesizer per process (voice, parameters, callback, buffers) and is
# not thread-safe: every call into it, initialization included, holds this lock. The sink and
# the callback are module state for the same reason: they mirror the library's own globals.
_LOCK = threading.Lock()
_LOAD_LOCK = threading.Lock()  # apart from _LOCK: the loaded fast path must never wait
_sink: _Sink | None = None
_shared: LibEspeak | None = None


def _on_audio(wav: Any, count: int, events: int | None) -> int:
    # Runs inside espeak_Synth, on the thread that holds _LOCK; must not raise.
    sink = _sink
    if sink is None:
        return 1  # nobody is listening: stop
    if wav and count > 0:
        sink.chunks.append(ctypes.string_at(wav, count * 2))
    return 1 if sink.abort is not None and sink.abort.is_set() else 0


_CALLBACK = _SynthCallback(_on_audio)  # module-level: C keeps only a raw pointer to it


class LibEspeak:
    """One initialized libespeak-ng; `shared_library()` gives the process's instance.

    `synthesize` blocks for the whole utterance (a few ms per second of speech): call it from
    a worker thread, never from an event loop. Calls from many threads queue on one lock.
    """

    engine = ENGINE

    def __init__(self, lib: ctypes.CDLL, sample_rate_hz: int) -> None:
        self._lib = lib
        self.sample_rate_hz = sample_rate_hz

    def synthesize(
        self,
        text: str,
        *,
        voice: str = "en",
        words_per_minute: int = 175,
        abort: threading.Event | None = None,
    ) -> Speech:
        """`text` spoken by `voice` at `words_per_minute`, as PCM at `sample_rate_hz`.

        Setting `abort` (from any thread) stops the synthesis at its next `BUFFER_MS` chunk,
        or before it starts if it is still waiting for the lock: `SynthesisAborted`.
        Raises `SynthesisError` for an unknown voice or a failing library.
        """
        data = text.replace("\0", " ").encode("utf-8")  # a NUL would end the C string early
        if not data.strip():
            return Speech(b"", self.sample_rate_hz)
        global _sink
        sink = _Sink(abort)
        with _LOCK:
            if abort is not None and abort.is_set():
                raise SynthesisAborted(ENGINE, "aborted before it started")
            _sink = sink
            try:
                status = self._select(voice, words_per_minute)
                if status == _EE_OK:
                    status = self._lib.espeak_Synth(
                        data, len(data) + 1, 0, _POS_CHARACTER, 0, _SYNTH_FLAGS, None, None
                    )
                if status == _EE_OK:
                    status = self._lib.espeak_Synchronize()
            finally:
                _sink = None
        if abort is not None and abort.is_set():
            raise SynthesisAborted(ENGINE, "aborted while speaking")
        if status == _EE_NOT_FOUND:
            raise SynthesisError(ENGINE, f"libespeak-ng has no voice {voice!r}")
        if status != _EE_OK:
            raise SynthesisError(ENGINE, f"libespeak-ng failed with status {status}")
        return Speech(_little_endian(b"".join(sink.chunks)), self.sample_rate_hz)

    def _select(self, voice: str, words_per_minute: int) -> int:
        status: int = self._lib.espeak_SetVoiceByName(voice.encode("utf-8"))
        if status == _EE_OK:
            # After the voice: choosing a voice may reset the rate to the voice's own.
            status = self._lib.espeak_SetParameter(_RATE, words_per_minute, 0)
        return status


def open_library(library_path: str, data_path: str) -> LibEspeak:
    """Load the libespeak-ng at `library_path` and initialize its one synthesizer with the
    `espeak-ng-data` folder `data_path`; raises `EspeakUnavailable`.

    Initializing resets that library's global state: use `shared_library()` unless the file is
    one nothing else in the process uses.
    """
    try:
        lib = ctypes.CDLL(library_path)
        _declare(lib)
    except (OSError, AttributeError) as exc:
        raise EspeakUnavailable(ENGINE, f"cannot load {library_path}: {exc}") from exc
    with _LOCK:
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, BUFFER_MS, os.fsencode(data_path), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise EspeakUnavailable(
                ENGINE, f"libespeak-ng found no usable data in {data_path} (status {rate})"
            )
        lib.espeak_SetSynthCallback(_CALLBACK)
    return LibEspeak(lib, rate)


def shared_library() -> LibEspeak:
    """The process's libespeak-ng from the espeakng-loader package, initialized on first use
    (tens of ms, once); raises `EspeakUnavailable`."""
    global _shared
    if _shared is not None:
        return _shared
    with _LOAD_LOCK:  # initialize once: a second espeak_Initialize would reset the first
        if _shared is None:
            try:
                loader: Any = importlib.import_module(LOADER_PACKAGE)
                library_path, data_path = loader.get_library_path(), loader.get_data_path()
            except (ImportError, RuntimeError) as exc:
                raise EspeakUnavailable(
                    ENGINE, f"the espeakng-loader package is missing or broken: {exc}"
                ) from exc
            _shared = open_library(str(library_path), str(data_path))
        return _shared


def _declare(lib: ctypes.CDLL) -> None:
    """Argument types, so ctypes passes `size_t` and pointers at their real width."""
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.argtypes = []
    lib.espeak_Synchronize.restype = ctypes.c_int


def _little_endian(native: bytes) -> bytes:
    if sys.byteorder == "little":
        return native
    samples = array.array("h", native)
    samples.byteswap()
    return samples.tobytes()
