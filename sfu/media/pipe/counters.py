"""What a pipe counts (for metrics) and a log line rate limit for refused datagrams."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

#: Seconds between two log lines about refused datagrams (the counters have every one).
LOG_INTERVAL = 10.0


def _per_kind() -> dict[str, int]:
    return {"audio": 0, "video": 0}


@dataclass
class PipeCounters:
    """Plain counters; :meth:`snapshot` copies them for a metrics collector."""

    packets_sent: dict[str, int] = field(default_factory=_per_kind)
    bytes_sent: dict[str, int] = field(default_factory=_per_kind)
    packets_received: dict[str, int] = field(default_factory=_per_kind)
    bytes_received: dict[str, int] = field(default_factory=_per_kind)
    #: Media packets resent from the exporter's history on the importer's NACK.
    resent: int = 0
    #: Describe and feedback datagrams sent and received.
    control_sent: int = 0
    control_received: int = 0
    #: Datagrams refused before use, by reason: truncated, malformed, unauthenticated, replayed,
    #: invalid (authentic but not a valid message), unknown_stream, unexpected (a publisher not
    #: expected here), stale (an older description than one already applied), send_failed.
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    @property
    def auth_failures(self) -> int:
        return self.dropped.get("unauthenticated", 0)

    def snapshot(self) -> dict[str, object]:
        return asdict(self)


class RateLimitedLog:
    """At most one line per :data:`LOG_INTERVAL` seconds, saying how many were left unsaid."""

    def __init__(self, logger: logging.Logger, interval: float = LOG_INTERVAL) -> None:
        self._log = logger
        self._interval = interval
        self._last = -1e18
        self._quiet = 0

    def warning(self, now: float, message: str, *args: object) -> bool:
        if now - self._last < self._interval:
            self._quiet += 1
            return False
        suffix = f" ({self._quiet} more since the last line)" if self._quiet else ""
        self._last, self._quiet = now, 0
        self._log.warning(message + suffix, *args)
        return True
