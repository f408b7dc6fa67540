"""Whether moonshine-cpp's library runs on this machine's CPU, found out in a child process.

The moonshine-cpp 0.1.4 wheel's library is built for CPUs with AVX-512; on one without it,
loading the model stops the whole process with SIGILL, which no exception handler sees. A
media worker must not die that way in the middle of other calls, so the first load is tried
in a child (`python -m media_worker.providers.moonshine_probe`): it loads the packaged model
and transcribes a tenth of a second of silence. The answer is kept for the process.
"""

from __future__ import annotations

import functools
import importlib.util
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

MOONSHINE_PACKAGE = "moonshine_cpp"
PROBE_TIMEOUT_S = 60.0
_PROBE_COMMAND = (sys.executable, "-m", "media_worker.providers.moonshine_probe")


@dataclass(frozen=True)
class MoonshineSupport:
    """`runs`: the model loaded and transcribed in the probe; else `reason` says what failed."""

    runs: bool
    reason: str = ""


def probe(
    command: Sequence[str] = _PROBE_COMMAND, timeout_s: float = PROBE_TIMEOUT_S
) -> MoonshineSupport:
    """Run the probe `command` (blocking: seconds) and read its outcome."""
    try:
        done = subprocess.run(
            list(command), capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return MoonshineSupport(False, f"the moonshine probe did not finish: {exc}")
    if done.returncode == 0:
        return MoonshineSupport(True)
    if done.returncode < 0:
        name = _signal_name(-done.returncode)
        hint = (
            " (an instruction this CPU lacks: the library needs AVX-512)"
            if name == "SIGILL"
            else ""
        )
        return MoonshineSupport(False, f"moonshine-cpp's library was killed by {name}{hint}")
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return MoonshineSupport(False, f"moonshine-cpp failed to load its model: {last[:200]}")


def moonshine_installed() -> bool:
    return importlib.util.find_spec(MOONSHINE_PACKAGE) is not None


@functools.cache
def moonshine_support() -> MoonshineSupport:
    """This process's answer, probed once (blocking the first time: call it in a thread)."""
    if not moonshine_installed():
        return MoonshineSupport(False, f"the {MOONSHINE_PACKAGE} package is not installed")
    return probe()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _main() -> None:
    import numpy as np

    from media_worker.providers.moonshine_stt import MoonshineTranscriber

    MoonshineTranscriber(probed=False).transcribe(np.zeros(1600, dtype=np.float32))


if __name__ == "__main__":
    _main()
