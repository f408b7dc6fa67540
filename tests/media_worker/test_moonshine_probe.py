"""Whether moonshine-cpp runs here is asked of a child process, so a CPU the library was not
built for refuses the moonshine STT in words instead of killing the worker."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dispatcher.demo import FAST_MEDIA_SLOTS, REALISTIC_MEDIA_SLOTS, Ports, demo_procfile, fleet_env
from media_worker.providers import moonshine_stt
from media_worker.providers.errors import ProviderUnavailable
from media_worker.providers.moonshine_probe import MoonshineSupport, probe
from shared.settings import Settings


def child(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_library_killed_by_an_illegal_instruction_is_reported_as_such() -> None:
    support = probe(child("import os, signal; os.kill(os.getpid(), signal.SIGILL)"))
    assert not support.runs
    assert "SIGILL" in support.reason and "AVX-512" in support.reason


def test_a_model_that_fails_to_load_is_reported_with_the_last_line_it_printed() -> None:
    support = probe(child("import sys; print('loading', file=sys.stderr); sys.exit('bad model')"))
    assert support == MoonshineSupport(False, "moonshine-cpp failed to load its model: bad model")


def test_a_probe_that_loads_and_transcribes_reports_that_it_runs() -> None:
    assert probe(child("pass")) == MoonshineSupport(True)


def test_a_probe_that_hangs_is_given_up() -> None:
    support = probe(child("import time; time.sleep(30)"), timeout_s=0.5)
    assert not support.runs and "did not finish" in support.reason


def test_where_the_library_cannot_run_the_transcriber_refuses_without_loading_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not moonshine_stt.moonshine_installed():
        pytest.skip("the moonshine-cpp package is not installed")
    reason = "moonshine-cpp's library was killed by SIGILL"
    monkeypatch.setattr(moonshine_stt, "moonshine_support", lambda: MoonshineSupport(False, reason))
    # Loading would kill this process if the probe's answer were ignored on such a CPU.
    with pytest.raises(ProviderUnavailable, match="killed by SIGILL"):
        moonshine_stt.MoonshineTranscriber()


def test_the_demo_leaves_the_realistic_worker_out_where_moonshine_cannot_run(
    tmp_path: Path,
) -> None:
    ports = Ports.pick()
    without = demo_procfile(ports, realistic=False, run_dir=tmp_path).read_text(encoding="utf-8")
    assert "media_realistic" not in without and "\nmedia:" in "\n" + without
    with_it = demo_procfile(ports, realistic=True, run_dir=tmp_path).read_text(encoding="utf-8")
    assert f"media_realistic: CALLFLEET_MEDIA_PORT={ports.media_realistic}" in with_it


def test_without_the_realistic_worker_the_fast_one_takes_its_slots(settings: Settings) -> None:
    ports = Ports.pick()
    assert fleet_env(settings, ports)["CALLFLEET_MEDIA_SLOTS"] == str(FAST_MEDIA_SLOTS)
    alone = fleet_env(settings, ports, realistic=False)["CALLFLEET_MEDIA_SLOTS"]
    assert alone == str(FAST_MEDIA_SLOTS + REALISTIC_MEDIA_SLOTS)
