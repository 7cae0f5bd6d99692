"""Log lines: one structured line per notable thing (a start, a resume, Redis away), never
one per event.

Every module logs to `logging.getLogger(__name__)` (so under `stockflow.`); the message is the
event's name and `extra` carries its fields:

    log.info("start", extra={"process_id": 0, "buckets": 8})

`configure()`, called once by the CLI, writes them to stderr as logfmt

    ts=2026-11-30T09:12:03.481Z level=info logger=stockflow.ops.live event=start process_id=0 ...

or as one JSON object per line. Without it (the engine embedded in another program) they go
wherever that program's logging sends them. Either way no credential is written (`mask()`,
ops/masking.py).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TextIO

from .masking import mask

# What `stockflow replay`, `demo`, `generate` and `bench` show unless told otherwise: their
# output is their summary, so only what went wrong joins it.
QUIET = "warning"

# The attributes every LogRecord has; anything else on a record came in `extra`: a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}


def fields_of(record: logging.LogRecord) -> dict:
    """The fields a log call passed in `extra`, in the order given."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


def _head(record: logging.LogRecord) -> dict:
    return {"ts": _timestamp(record), "level": record.levelname.lower(), "logger": record.name,
            "event": record.getMessage()}


class LogfmtFormatter(logging.Formatter):
    """`key=value` pairs; values with spaces, quotes or `=` are quoted."""

    def format(self, record: logging.LogRecord) -> str:
        pairs = {**_head(record), **fields_of(record)}
        if record.exc_info:
            pairs["error"] = self.formatException(record.exc_info)
        return mask(" ".join(f"{key}={_logfmt_value(value)}" for key, value in pairs.items()))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `ts`, `level`, `logger`, `event`, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        line = {**_head(record), **fields_of(record)}
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return mask(json.dumps(line, default=str, separators=(",", ":")))


def _logfmt_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):  # {"orders:1": 3} -> orders:1=3 (quoted below)
        value = ",".join(f"{k}={v}" for k, v in value.items())
    elif isinstance(value, (list, tuple, set, frozenset)):
        value = ",".join(str(v) for v in value)
    text = str(value)
    if text and not any(c in text for c in ' ="\\\n\t'):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


class _Stderr(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a line is written, not when configured."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


_HANDLER = "stockflow"  # the name of the handler `configure` installs, to replace it


def configure(level: str, form: str = "text", stream: TextIO | None = None) -> None:
    """Send the `stockflow` loggers' lines at `level` and above to `stream` (stderr) as
    `form` ("text": logfmt, or "json"); calling it again replaces the previous setting."""
    root = logging.getLogger("stockflow")
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER:
            root.removeHandler(handler)
    handler = _Stderr() if stream is None else logging.StreamHandler(stream)
    handler.set_name(_HANDLER)
    handler.setFormatter(JsonFormatter() if form == "json" else LogfmtFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
