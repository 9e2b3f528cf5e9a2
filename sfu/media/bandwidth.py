"""Relay a watcher's bandwidth estimate (REMB) upstream, as a cap on what its partner publishes.

When media is forwarded without re-encoding, the REMB a watcher's browser sends to the server reaches
no encoder. :class:`UpstreamCap` sits on the partner's inbound receiver: it remembers the watcher's
estimate, clamps the REMB the server's own estimator sends to the publisher, and sends a REMB at
once whenever the watcher's estimate changes. A cap not refreshed for :data:`CAP_TTL` seconds (the
watcher left or stopped reporting) is dropped.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

#: Seconds a watcher's estimate stays valid without a new REMB (browsers send one every ~1 s).
CAP_TTL = 5.0
#: Never ask a publisher for less than this (bps); below it video stops being useful.
MIN_CAP = 100_000


class UpstreamCap:
    def __init__(self, send_remb: Callable[[int, list[int]], None], ssrc: Callable[[], Optional[int]]) -> None:
        self._send_remb = send_remb
        self._ssrc = ssrc
        self._cap: Optional[int] = None
        self._cap_at = 0.0
        self._estimate: Optional[int] = None
        self.relayed = 0

    @property
    def cap(self) -> Optional[int]:
        if self._cap is not None and time.monotonic() - self._cap_at > CAP_TTL:
            self._cap = None
        return self._cap

    def set(self, bitrate: int) -> None:
        """The watcher's latest estimate: forward it to the publisher now (clamped to ours)."""
        self._cap = max(MIN_CAP, int(bitrate))
        self._cap_at = time.monotonic()
        ssrc = self._ssrc()
        if ssrc is None:
            return
        value = self._cap if self._estimate is None else min(self._cap, self._estimate)
        self.relayed += 1
        self._send_remb(value, [ssrc])

    def clear(self) -> None:
        self._cap = None

    def clamp(self, estimate: int) -> int:
        """Applied to every REMB the server's own receiver sends upstream."""
        self._estimate = estimate
        cap = self.cap
        return estimate if cap is None else min(estimate, cap)
