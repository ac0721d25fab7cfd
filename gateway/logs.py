"""Log output: the readable text lines, or one JSON object per line (LOG_FORMAT=json) for a log
collector, with the shop and run ids as fields when the line is about one."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson

from bulk import log_context
from gateway.settings import LOG_FORMATS

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
__all__ = ["LOG_FORMATS", "JsonFormatter", "TextFormatter", "configure_logging"]
# Attributes every LogRecord has: anything else was passed as `extra=` and becomes a field.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime", "taskName", "color_message"}  # uvicorn's ANSI-coloured copy of the message


class JsonFormatter(logging.Formatter):
    """{"time", "level", "logger", "message", "shop"?, "run"?, extras…, "exception"?} per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(log_context.current())
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


class TextFormatter(logging.Formatter):
    """The text line, with `[shop run]` after the logger's name when known."""

    def format(self, record: logging.LogRecord) -> str:
        ids = log_context.current()
        line = super().format(record)
        if not ids:
            return line
        head, sep, rest = line.partition(": ")
        return f"{head} [{' '.join(ids.values())}]{sep}{rest}"


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """The root logger's one handler (stderr) in `log_format`; uvicorn's own loggers propagate to it."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
