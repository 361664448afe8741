"""One JSON object per line on stdout: Cloud Logging reads ``severity`` and ``message``, and
CloudWatch Logs Insights discovers every field. Callers pass only non-secret fields."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

LOGGER_NAME = "fs2split"


class RawJson(str):
    """A field value that is already JSON text, written into the line as is: a constant part serialised
    once (the EMF block, fs2split/metrics.py) costs nothing per line."""


class JsonLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
        }
        line.update({k: v for k, v in getattr(record, "fields", {}).items() if v is not None})
        if record.exc_info:
            # Exception text is for operators; it never holds a secret because no secret is
            # ever put into an exception message.
            line["error"] = self.formatException(record.exc_info).splitlines()[-1]
        raw = [(k, v) for k, v in line.items() if type(v) is RawJson]
        if not raw:
            return _encodable(json.dumps(line, ensure_ascii=False, default=str))
        for key, _ in raw:
            del line[key]
        text = json.dumps(line, ensure_ascii=False, default=str)
        return _encodable(text[:-1] + "".join(f", {json.dumps(k)}: {v}" for k, v in raw) + "}")


def _encodable(text: str) -> str:
    """The line with lone surrogates (from a hostile property name, an upstream's text) replaced: no UTF-8
    stream accepts them, and the logging module would print "--- Logging error ---" instead of the line."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is now, so a replaced stdout (test capture, a runtime
    that swaps it) still gets the lines."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure(level: str = "INFO") -> logging.Logger:
    """Route the fs2split logger to stdout as JSON lines, once per process."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h.formatter, JsonLineFormatter) for h in logger.handlers):
        handler = _StdoutHandler()
        handler.setFormatter(JsonLineFormatter())
        logger.addHandler(handler)
        # The Lambda runtime puts its own handler on the root logger: don't print twice.
        logger.propagate = False
    logger.setLevel(level if level in logging.getLevelNamesMapping() else "INFO")
    return logger


def emit(severity: int, message: str, **fields: Any) -> None:
    logging.getLogger(LOGGER_NAME).log(severity, message, extra={"fields": fields})
