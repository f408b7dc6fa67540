"""`EspeakTTSService`: the offline speaking voice, `espeak-ng --stdout` run as a subprocess."""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

from pipecat.utils.errors import ErrorCategory

from media_worker.providers.audio import WavFormatError, parse_wav, resample_pcm
from media_worker.providers.errors import ProviderUnavailable, SynthesisFailed
from media_worker.providers.pcm_tts import PcmTTSService

ESPEAK_BINARY = "espeak-ng"


class EspeakTTSService(PcmTTSService):
    """Speaks with `espeak-ng`: the text goes in on stdin (never as an argument), a WAV comes
    back on stdout and is resampled with numpy to the pipeline's output rate.

    The binary is looked up at construction: without it this raises `ProviderUnavailable`
    rather than failing on the first sentence. Each sentence is one subprocess, awaited
    without blocking the event loop, killed if it outlives `synth_timeout_s` or the
    request is cancelled (an interruption).
    """

    provider = "espeak"

    def __init__(
        self,
        *,
        voice: str = "en",
        binary: str = ESPEAK_BINARY,
        words_per_minute: int = 165,
        synth_timeout_s: float = 10.0,
        **kwargs: Any,
    ):
        path = shutil.which(binary)
        if path is None:
            raise ProviderUnavailable(
                self.provider,
                f"the espeak TTS needs the {binary!r} binary, which is not on PATH: install "
                "espeak-ng (Debian: apt-get install espeak-ng) or choose another voice",
            )
        super().__init__(voice=voice, **kwargs)
        self._binary = path
        self._voice = voice
        self._words_per_minute = words_per_minute
        self._synth_timeout_s = synth_timeout_s

    async def synthesize(self, text: str, sample_rate_hz: int) -> bytes:
        wav = await self._run_espeak(text)
        try:
            audio = parse_wav(wav)
        except WavFormatError as exc:
            raise SynthesisFailed(
                self.provider, f"espeak-ng wrote no usable WAV: {exc}", ErrorCategory.SERVER
            ) from exc
        return await asyncio.to_thread(
            resample_pcm, audio.pcm, audio.sample_rate_hz, sample_rate_hz
        )

    async def _run_espeak(self, text: str) -> bytes:
        command = [self._binary, "--stdout", "--stdin", "-v", self._voice]
        command += ["-s", str(self._words_per_minute)]
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise SynthesisFailed(
                self.provider, f"cannot run {self._binary}: {exc}", ErrorCategory.SERVER
            ) from exc
        try:
            stdout, stderr = await asyncio.wait_for(
                process.communicate(text.encode("utf-8")), timeout=self._synth_timeout_s
            )
        except TimeoutError as exc:
            raise SynthesisFailed(
                self.provider,
                f"espeak-ng took longer than {self._synth_timeout_s} s",
                ErrorCategory.SERVER,
            ) from exc
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        if process.returncode != 0:
            detail = stderr.decode("utf-8", "replace").strip()[:200]
            raise SynthesisFailed(
                self.provider,
                f"espeak-ng exited with {process.returncode}: {detail}",
                ErrorCategory.SERVER,
            )
        return stdout
