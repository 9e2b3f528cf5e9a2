"""Logging: one line per event, as text or as one JSON object per line; client addresses hidden.

Log calls may pass structured fields with ``extra={"event": "paired", "session": ...}``; the JSON
format emits them as keys. Nothing here logs SDP or chat text: callers never pass them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import sys
import time
from typing import Any, Optional

#: Attributes every LogRecord has; anything else was passed through ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """``{"ts": ..., "level": ..., "logger": ..., "msg": ..., <extra fields>}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_fields(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ...`` with tracebacks kept on following lines."""

    def __init__(self, worker: Optional[str] = None) -> None:
        tag = "" if worker is None else f"[worker {worker}] "
        super().__init__(f"%(asctime)s %(levelname)s {tag.replace('%', '%%')}%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields(record)
        if "event" in fields:  # our structured events (aiohttp's access log repeats its message)
            head, sep, tail = line.partition("\n")
            extra = " ".join(f"{k}={v}" for k, v in fields.items() if k not in ("event", "worker"))
            line = f"{head} {extra}{sep}{tail}" if extra else line
        return line


class WorkerTag(logging.Filter):
    """Marks every record with the worker id (``worker`` in JSON; ``[worker N]`` in text), so the
    interleaved lines of ``--workers N`` tell whose they are."""

    def __init__(self, worker: str) -> None:
        super().__init__()
        self.worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = self.worker
        return True


class StderrHandler(logging.StreamHandler):
    """Writes each line to ``sys.stderr`` as it is when the line is logged: a program embedding
    the server (a test runner, say) may replace ``sys.stderr`` after set-up, and a handler bound to
    the old one would write to a closed stream."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always the current sys.stderr


def setup(level: str = "info", fmt: str = "text", worker: Optional[str] = None) -> None:
    """Configure the root logger for ``sfu serve`` (replaces handlers set before); ``worker`` tags
    every line with that worker id."""
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(worker))
    if worker is not None:
        handler.addFilter(WorkerTag(worker))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    if level != "debug":
        # aioice/aiortc log candidates and SDP details at info/debug.
        for noisy in ("aioice", "aiortc"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


class AddressTagger:
    """Turns client IP addresses into what the logs may show.

    By default a short keyed hash (``ip-3fa9c1d2``): it links one address's lines within this run of
    the server without revealing the address; the key is random per process, so tags cannot be
    matched across restarts or against a list of addresses.
    """

    def __init__(self, full: bool = False, key: Optional[bytes] = None) -> None:
        self.full = full
        self._key = key or secrets.token_bytes(16)

    def __call__(self, address: Optional[str]) -> str:
        if not address:
            return "?"
        if self.full:
            return address
        digest = hmac.new(self._key, address.encode(), hashlib.sha256).hexdigest()
        return "ip-" + digest[:8]


#: aiohttp access log without the client address (%a) and without the User-Agent.
ACCESS_LOG_FORMAT = '"%r" %s %b %Tfs'
ACCESS_LOG_FORMAT_WITH_ADDRESS = '%a "%r" %s %b %Tfs'
