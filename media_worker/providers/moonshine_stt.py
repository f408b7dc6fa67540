"""`MoonshineSTTService`: offline English STT on the model the `moonshine-cpp` package ships."""

from __future__ import annotations

import asyncio
import ctypes
import importlib
import importlib.util
import threading
from collections.abc import AsyncGenerator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pipecat.frames.frames import ErrorFrame, Frame, StartFrame, TranscriptionFrame
from pipecat.services.settings import STTSettings
from pipecat.services.stt_service import SegmentedSTTService
from pipecat.transcriptions.language import Language
from pipecat.utils.errors import ErrorCategory
from pipecat.utils.time import time_now_iso8601

from media_worker.providers.audio import pcm16_to_float, resample
from media_worker.providers.errors import ProviderUnavailable
from media_worker.providers.moonshine_probe import (
    MOONSHINE_PACKAGE,
    moonshine_installed,
    moonshine_support,
)

MODEL_SAMPLE_RATE_HZ = 16000
_MODEL_FILES = ("encoder_model.ort", "decoder_model_merged.ort", "tokenizer.bin")
_PROVIDER = "moonshine"


class MoonshineTranscriber:
    """One loaded moonshine-cpp model (`base`, English, shipped in the package).

    The model directory is always passed explicitly, so moonshine-cpp never takes the code
    path that downloads a model. `transcribe` calls the library's C function directly: the
    package's own Python `transcribe` (0.1.4) references a missing `ctypes.c_float_p`.
    Calls are serialized by a lock; they block, so run them in a thread.

    The library is first tried in a child process (`moonshine_probe`), since on a CPU it was
    not built for it kills the process that loads it; `probed=False` skips that (the probe's
    own child does).
    """

    def __init__(self, model_dir: Path | None = None, *, probed: bool = True) -> None:
        # Before the import: importing the package already loads its libraries.
        if probed and not (support := moonshine_support()).runs:
            raise ProviderUnavailable(_PROVIDER, support.reason)
        module = _moonshine_module()
        model_dir = model_dir or Path(str(module.__file__)).parent / "models" / "base-en"
        missing = [name for name in _MODEL_FILES if not (model_dir / name).is_file()]
        if missing:
            raise ProviderUnavailable(_PROVIDER, f"no moonshine model in {model_dir} ({missing})")
        self.model_dir = model_dir
        self._module = module
        self._model = module.MoonshineModel(model_dir_path=str(model_dir), model_type="base")
        self._lock = threading.Lock()

    def transcribe(self, samples: NDArray[np.float32]) -> str:
        """The text of mono float audio at 16 kHz ('' for silence); raises `RuntimeError`."""
        audio = np.ascontiguousarray(samples, dtype=np.float32)
        if audio.size == 0:
            return ""
        pointer = audio.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        text = ctypes.c_char_p()
        library = self._module.moonshine_lib
        with self._lock:
            error = library.moonshine_transcribe(
                self._model.model_handle, pointer, audio.size, ctypes.byref(text)
            )
        if error != 0:
            raise RuntimeError(f"moonshine_transcribe failed with error {error}")
        try:
            return (text.value or b"").decode("utf-8", "replace").strip()
        finally:
            library.moonshine_free_text(text)


_shared: dict[Path | None, MoonshineTranscriber] = {}
_shared_lock = threading.Lock()


def shared_transcriber(model_dir: Path | None = None) -> MoonshineTranscriber:
    """The process's transcriber for `model_dir`, loaded on first use (blocking, ~1 s)."""
    with _shared_lock:
        if model_dir not in _shared:
            _shared[model_dir] = MoonshineTranscriber(model_dir)
        return _shared[model_dir]


class MoonshineSTTService(SegmentedSTTService):
    """pipecat's segmented STT (VAD frames cut utterances) on moonshine-cpp, fully offline.

    pipecat's own `MoonshineSTTService` needs the `moonshine_voice` package and downloads its
    model on first use, so it is not used. Segments arrive at the pipeline's input rate (8 kHz
    for Twilio) and are resampled to the model's 16 kHz; transcription runs in a thread. The
    model loads at `StartFrame` (in a thread, once per process) unless `transcriber` is given;
    a missing package fails construction with `ProviderUnavailable`.
    """

    provider = _PROVIDER

    def __init__(
        self,
        *,
        transcriber: MoonshineTranscriber | None = None,
        model_dir: Path | None = None,
        user_id: str = "",
        ttfs_p99_latency: float = 1.5,
        **kwargs: Any,
    ):
        if transcriber is None and not moonshine_installed():
            raise ProviderUnavailable(
                _PROVIDER, "the moonshine STT needs the moonshine-cpp package (pip install)"
            )
        super().__init__(
            settings=STTSettings(model="moonshine-base-en", language=Language.EN),
            ttfs_p99_latency=ttfs_p99_latency,
            **kwargs,
        )
        self._transcriber = transcriber
        self._model_dir = model_dir
        self._transcript_user_id = user_id

    @property
    def wants_wav_segments(self) -> bool:
        return False

    def can_generate_metrics(self) -> bool:
        return True

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        if self._transcriber is None:
            try:
                self._transcriber = await asyncio.to_thread(shared_transcriber, self._model_dir)
            except (ProviderUnavailable, OSError, MemoryError) as exc:
                await self.push_error(
                    f"moonshine model could not be loaded: {exc}",
                    exception=exc,
                    category=ErrorCategory.INVALID_REQUEST,
                )

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        """Transcribe one segment (16-bit mono PCM at the service's input rate)."""
        transcriber = self._transcriber
        if transcriber is None:
            yield ErrorFrame(error="moonshine model is not loaded", category=ErrorCategory.UNKNOWN)
            return
        await self.start_processing_metrics()
        text = await asyncio.to_thread(_segment_text, transcriber, audio, self.sample_rate)
        await self.stop_processing_metrics()
        if text:
            yield TranscriptionFrame(
                text, self._transcript_user_id, time_now_iso8601(), Language.EN, finalized=True
            )


def _segment_text(transcriber: MoonshineTranscriber, pcm: bytes, sample_rate_hz: int) -> str:
    samples = resample(pcm16_to_float(pcm), sample_rate_hz, MODEL_SAMPLE_RATE_HZ)
    return transcriber.transcribe(samples.astype(np.float32))


def _moonshine_module() -> ModuleType:
    try:
        return importlib.import_module(MOONSHINE_PACKAGE)
    except ImportError as exc:
        raise ProviderUnavailable(
            _PROVIDER, "the moonshine STT needs the moonshine-cpp package (pip install)"
        ) from exc
