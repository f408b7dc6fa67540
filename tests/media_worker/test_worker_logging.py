"""pipecat's loguru output in the media worker: through our logging (JSON, phones masked), at
WARNING when the process logs at INFO, opened up only when the process asks for DEBUG."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
import structlog
from loguru import logger

from shared.logging import configure_logging, library_log_level, route_loguru
from shared.settings import Settings


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    configure_logging(Settings(log_format="json", log_level="INFO"), stream=out)
    try:
        yield out
    finally:
        logger.remove()
        logger.add(sys.stderr)  # loguru's own default
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.parametrize(
    ("process", "library"),
    [
        ("INFO", logging.WARNING),
        ("info", logging.WARNING),
        ("WARNING", logging.WARNING),
        ("ERROR", logging.ERROR),
        ("DEBUG", logging.DEBUG),
        ("nonsense", logging.WARNING),
    ],
)
def test_libraries_log_at_warning_unless_the_process_is_stricter_or_debugging(
    process: str, library: int
) -> None:
    assert library_log_level(process) == library


def test_loguru_records_come_out_as_our_json_with_phones_masked(json_logs: io.StringIO) -> None:
    route_loguru(library_log_level("INFO"))
    logger.debug("Loading Silero VAD model...")
    logger.info("Pipeline started")
    logger.warning("dialing +14155550123 failed")
    try:
        raise RuntimeError("no route to +14155550123")
    except RuntimeError:
        logger.exception("TTS error")

    warning, error = _lines(json_logs)
    assert warning["level"] == "warning" and warning["logger"] == __name__
    assert error["level"] == "error" and error["event"] == "TTS error"
    assert "RuntimeError" in str(error["exception"])
    assert "4155550123" not in json_logs.getvalue()
