"""structlog setup: JSON in production or when not on a TTY, readable in dev; phones masked.
Libraries that log through loguru (pipecat) are routed into the same output by `route_loguru`."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from shared.phones import mask_phones_in
from shared.settings import Settings


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_phones_in(value)
    if isinstance(value, Mapping):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    return value


def mask_phone_numbers(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Mask phone-like digit runs anywhere in a log event, whoever wrote it."""
    for key, value in event_dict.items():
        event_dict[key] = _mask(value)
    return event_dict


def configure_logging(settings: Settings, *, stream: Any = None) -> None:
    """Configure structlog and route stdlib logging (celery, uvicorn) through it."""
    out = stream or sys.stderr
    use_json = settings.log_format == "json" or (
        settings.log_format == "auto" and (settings.env == "production" or not out.isatty())
    )
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    shared_processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Tracebacks are rendered to text first so that numbers inside them are masked too.
    structlog.configure(
        processors=[
            *shared_processors,
            structlog.processors.format_exc_info,
            mask_phone_numbers,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(out),
        # Not cached: cached loggers would ignore later reconfiguration (capture_logs in tests)
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                mask_phone_numbers,
                renderer,
            ],
            # Stdlib and loguru records name their logger (`pipecat.services.tts_service`).
            foreign_pre_chain=[*shared_processors, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())


def library_log_level(process_level: str) -> int:
    """The level for libraries that narrate every call (pipecat logs its setup and each frame
    path at INFO and DEBUG): WARNING at the process's INFO; the process's own level when that
    is stricter, or when it is DEBUG (asked for on purpose)."""
    level = logging.getLevelNamesMapping().get(process_level.upper(), logging.INFO)
    return level if level <= logging.DEBUG else max(level, logging.WARNING)


class _ToStdlib(logging.Handler):
    """Hands a record loguru built to the stdlib logger of its name (and so to the root's
    handler that `configure_logging` installed)."""

    def emit(self, record: logging.LogRecord) -> None:
        # The traceback is rendered from `exc_info` by our processors; loguru leaves a
        # placeholder `exc_text` that a plain stdlib formatter would print instead.
        record.exc_text = None
        logging.getLogger(record.name).handle(record)


def route_loguru(level: int) -> None:
    """Replace loguru's own stderr output (DEBUG and up, plain text) with stdlib logging from
    `level` up, so pipecat's lines come out as ours do: JSON in production, phones masked.

    Call it after `configure_logging`. Process-wide: it removes every loguru sink.
    """
    from loguru import logger  # only processes that run pipecat have it

    logger.remove()
    # The message only: our processors add time, level and logger, and render the traceback
    # from `exc_info` (a format string would get loguru's copy of it appended).
    logger.add(_ToStdlib(), level=level, format=_message_only, backtrace=False, diagnose=False)


def _message_only(_record: Any) -> str:
    return "{message}"
