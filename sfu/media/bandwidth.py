"""Relay a watcher's bandwidth estimate (REMB) upstream, as a cap on what its partner publishes.

When media is forwarded without re-encoding, the REMB a watcher's browser sends to the server reaches
no encoder. :class:`UpstreamCap` sits on the partner's inbound receiver: it remembers the watcher's
estimate, clamps the REMB the server's own estimator sends to the publisher, and sends a REMB at
once whenever the watcher's estimate changes. A cap not refreshed for :data:`CAP_TTL` seconds (the
watcher left or stopped reporting) is dropped.

A receiver's estimate follows what it has been receiving (it may report at most ~1.5x its incoming
rate), so right after a partner switch it may still describe the previous stream — or the tiny grey
placeholder. Relaying that would throttle the new partner to a trickle and starve its keyframes.
Estimates are therefore ignored for :data:`SETTLE` seconds after each switch — except one that is
at least :data:`TRUSTED_SHARE` of what the publisher is sending now: a watcher whose link cannot
carry the new stream reports ~85% of what still reaches it (a delay-based overuse estimate), which
must reach the publisher at once or the watcher's bottleneck overflows and drops packets, while an
estimate left over from a much slower stream is far below. :class:`RateMeter` measures what the
publisher sends from a byte counter, sampled only when an estimate arrives.

REMB is rate-limited in both directions: a receiver's estimator that sees overuse reports on every
packet; a report goes upstream only every :data:`MIN_INTERVAL` seconds, or at once when it asks
for at least 10% less than the last one sent. Times are ``time.monotonic()`` seconds, passed in
by the caller.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

#: Seconds a watcher's estimate stays valid without a new REMB (browsers send one every ~1 s).
CAP_TTL = 5.0
#: Never ask a publisher for less than this (bps); below it video stops being useful.
MIN_CAP = 100_000
#: Seconds after a switch during which the watcher's estimate still describes its previous stream.
SETTLE = 3.0
#: Shortest time between two REMBs sent upstream, unless the newer asks for much less.
MIN_INTERVAL = 0.25
#: Right after a switch, an estimate at least this share of the publisher's current rate is relayed.
TRUSTED_SHARE = 0.5
#: Seconds of byte counts a :class:`RateMeter` averages over, and the least it needs for a rate.
RATE_WINDOW = 1.0
RATE_MIN_SPAN = 0.2


class RateMeter:
    """The bit rate of a growing byte counter, from samples taken when asked (no per-packet work)."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()

    def rate(self, octets: int, now: float) -> int | None:
        """Record ``octets`` (the counter's total) at ``now``; the rate over about the last
        :data:`RATE_WINDOW` seconds in bps, or ``None`` if the samples span too short a time."""
        samples = self._samples
        samples.append((now, octets))
        while len(samples) > 1 and now - samples[1][0] >= RATE_WINDOW:
            samples.popleft()
        then, before = samples[0]
        if now - then < RATE_MIN_SPAN:
            return None
        return int((octets - before) * 8 / (now - then))


class UpstreamCap:
    def __init__(self, send_remb: Callable[[int, list[int]], None], ssrc: Callable[[], int | None]) -> None:
        self._send_remb = send_remb
        self._ssrc = ssrc
        self._cap: int | None = None
        self._cap_at = 0.0
        self._estimate: int | None = None
        self._settled_at = 0.0
        self._sent: int | None = None
        self._sent_at = -1e9
        self.relayed = 0

    def current(self, now: float) -> int | None:
        """The watcher's cap in force (``None``: none, or it expired)."""
        if self._cap is not None and now - self._cap_at > CAP_TTL:
            self._cap = None
        return self._cap

    def set(self, bitrate: int, now: float, publishing: int | None = None) -> None:
        """The watcher's latest estimate: forward it to the publisher now (clamped to ours).

        ``publishing``: what the publisher sends now (bps), if known; right after a switch only an
        estimate of at least :data:`TRUSTED_SHARE` of it is relayed.
        """
        if now < self._settled_at and (publishing is None or bitrate < publishing * TRUSTED_SHARE):
            return
        self._cap = max(MIN_CAP, int(bitrate))
        self._cap_at = now
        ssrc = self._ssrc()
        if ssrc is None:
            return
        value = self._cap if self._estimate is None else min(self._cap, self._estimate)
        if self._due(value, now):
            self.relayed += 1
            self._send_remb(value, [ssrc])

    def release(self) -> None:
        """The watcher lifted its cap: the server's own estimate alone goes upstream again."""
        self._cap = None

    def clear(self, now: float) -> None:
        """A new watcher (or none): forget the cap and ignore estimates for a moment."""
        self._cap = None
        self._settled_at = now + SETTLE

    def clamp(self, estimate: int, now: float) -> int | None:
        """Applied to every REMB the server's own receiver sends upstream (``None``: skip it)."""
        self._estimate = estimate
        cap = self.current(now)
        value = estimate if cap is None else min(estimate, cap)
        return value if self._due(value, now) else None

    def _due(self, value: int, now: float) -> bool:
        if now - self._sent_at < MIN_INTERVAL and self._sent is not None and value > self._sent * 0.9:
            return False
        self._sent, self._sent_at = value, now
        return True
