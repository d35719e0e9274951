"""Logging: structlog configured once, events not sentences.

Console rendering on a terminal, one JSON object per line otherwise (what log
collectors want). Context such as an alert key or a feed name is bound with
``structlog.contextvars`` and travels with every line. A last processor masks
any value whose key looks like a secret, as a second line of defence: secrets
are never passed to a logger on purpose.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO, cast

import structlog

LogFormat = Literal["auto", "console", "json"]

_SECRET_MARKERS = ("password", "secret", "token", "api_key", "apikey", "authorization", "auth")
MASK = "***"


def mask_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace the value of any key that names a secret with ``***``."""
    for key in list(event_dict):
        lowered = key.lower()
        if any(marker in lowered for marker in _SECRET_MARKERS) and not lowered.endswith("_env"):
            event_dict[key] = MASK
    return event_dict


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is now, not to the one seen at configuration time.

    Test runners and daemons swap stderr; a logger holding the old, closed
    stream would turn every log line into an exception.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "info", fmt: LogFormat = "auto") -> None:
    """Configure structlog and the standard library's root logger (for aiohttp, alembic)."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    use_console = sys.stderr.isatty() if fmt == "auto" else fmt == "console"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if use_console
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        mask_secrets,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(cast(TextIO, _CurrentStderr()))
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.INFO) if numeric < logging.INFO else numeric)
    # aiohttp's access log is one line per request: useful in production, noise in tests.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # httpx (under python-telegram-bot) logs request URLs, and a bot's URL holds its token
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Alembic narrates every migration step; alertcast logs the outcome itself.
    logging.getLogger("alembic").setLevel(max(numeric, logging.WARNING))
