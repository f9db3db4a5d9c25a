"""How cvault's processes log: ``log_format = "text"`` (the default) or ``"json"``.

JSON is one object per line with ``time`` (UTC, ISO 8601), ``level``,
``logger``, ``message`` and ``pid`` (the process, one per ``--workers``), plus the request's ``request_id``, ``route``
(the route template), ``method``, ``status`` and ``duration_ms`` when the line
belongs to a request (the access log line of every request has them all), and
``exception`` (the traceback) for errors. Text lines carry the same
information in the classic ``time LEVEL logger: message`` shape.

What may be logged is decided where lines are written: paths, route templates,
ids and codes, never a header, query string, body, token, session, password or
secret value (the suite checks every line it produces; tests/support/log_guard.py).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any, TextIO

__all__ = ["REQUEST_ID", "JSONFormatter", "TextFormatter", "configure_logging", "make_handler"]

LOG_FORMATS = ("text", "json")

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("cvault_request_id", default=None)
"""The id of the request being handled (set by the request middleware), added to every line logged meanwhile."""

_REQUEST_FIELDS = ("request_id", "route", "method", "status", "duration_ms")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per record (see the module docs)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,  # which worker of `cvault serve --workers N` wrote it
        }
        for name in _REQUEST_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")


def formatter(log_format: str) -> logging.Formatter:
    return JSONFormatter() if log_format == "json" else TextFormatter()


def make_handler(stream: TextIO, log_format: str = "text") -> logging.Handler:
    """A handler writing ``log_format`` lines to ``stream``, with the request id filled in."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(_RequestIdFilter())
    return handler


def configure_logging(level: str, log_format: str = "text", stream: TextIO | None = None) -> None:
    """Make the process log every record at ``level`` and above to ``stream`` (stderr) in ``log_format``."""
    handler = make_handler(stream or sys.stderr, log_format)
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
