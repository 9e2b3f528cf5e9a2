"""Abuse limits: token buckets for connection and message rates, per-address connection caps, and
the deadlines after which a half-open or idle session is closed. Pure logic: callers pass ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .config import Config
from .signaling.errors import ErrorCode


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; starts full."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        self._refill(now)
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.burst


@dataclass
class Refusal:
    """Why a new connection is refused: a protocol error code and a message for humans."""

    code: ErrorCode
    message: str
    #: Seconds after which trying again makes sense (sent as ``retry_after``), if known.
    retry_after: Optional[float] = None


class AddressLimits:
    """Per client address: a connection-rate bucket and a count of open connections."""

    #: Forget full buckets of addresses with no open connection once this many are tracked.
    SWEEP_AT = 10_000

    def __init__(self, config: Config) -> None:
        self.rate = config.ip_connection_rate
        self.burst = config.ip_connection_burst
        self.max_open = config.ip_max_connections
        self.exempt = set(config.ip_limits_exempt)
        self._buckets: dict[str, TokenBucket] = {}
        self.open: dict[str, int] = {}

    def admit(self, address: str, now: float) -> Optional[Refusal]:
        """Count a new connection from ``address``, or say why it is refused (then nothing is counted)."""
        if address in self.exempt:
            self.open[address] = self.open.get(address, 0) + 1
            return None
        if self.max_open and self.open.get(address, 0) >= self.max_open:
            return Refusal(ErrorCode.TOO_MANY_CONNECTIONS, f"at most {self.max_open} connections per address")
        bucket = self._buckets.get(address)
        if bucket is None:
            if len(self._buckets) >= self.SWEEP_AT:
                self._sweep(now)
            bucket = self._buckets[address] = TokenBucket(self.rate, self.burst, now)
        if not bucket.take(now):
            return Refusal(ErrorCode.RATE_LIMITED, "too many new connections from this address; try again shortly")
        self.open[address] = self.open.get(address, 0) + 1
        return None

    def release(self, address: str) -> None:
        left = self.open.get(address, 0) - 1
        if left > 0:
            self.open[address] = left
        else:
            self.open.pop(address, None)

    def _sweep(self, now: float) -> None:
        for address in [a for a, b in self._buckets.items() if a not in self.open and b.full(now)]:
            del self._buckets[address]

    @property
    def tracked(self) -> int:
        return len(self._buckets)


@dataclass
class SessionClock:
    """What the deadlines of one session depend on."""

    created: float
    last_message: float
    negotiated: Optional[float] = None
    connected: bool = False
    bucket: TokenBucket = field(default=None)  # type: ignore[assignment]


class SessionLimits:
    """Message rate and deadlines for every open session (owned by the server)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._clocks: dict[str, SessionClock] = {}

    def opened(self, session_id: str, now: float) -> None:
        bucket = TokenBucket(self.config.message_rate, self.config.message_burst, now)
        self._clocks[session_id] = SessionClock(created=now, last_message=now, bucket=bucket)

    def closed(self, session_id: str) -> None:
        self._clocks.pop(session_id, None)

    def message(self, session_id: str, now: float) -> bool:
        """Record a message; False when it exceeds the rate (refuse it with ``rate_limited``)."""
        clock = self._clocks.get(session_id)
        if clock is None:
            return True
        clock.last_message = now
        return clock.bucket.take(now)

    def negotiated(self, session_id: str, now: float) -> None:
        clock = self._clocks.get(session_id)
        if clock is not None:
            clock.negotiated = now

    def media_connected(self, session_id: str) -> None:
        clock = self._clocks.get(session_id)
        if clock is not None:
            clock.connected = True

    def overdue(self, session_id: str, now: float, *, active: bool) -> Optional[str]:
        """Why the session must be closed now (a message for the client), or None.

        ``active``: the participant is waiting or paired (then silence is fine).
        """
        clock = self._clocks.get(session_id)
        if clock is None:
            return None
        c = self.config
        if clock.negotiated is None:
            if now - clock.created > c.offer_timeout:
                return f"no offer within {c.offer_timeout:g} s"
        elif not clock.connected and now - clock.negotiated > c.ice_timeout:
            return f"media did not connect within {c.ice_timeout:g} s of the offer"
        if not active and now - clock.last_message > c.idle_timeout:
            return f"idle for {c.idle_timeout:g} s"
        return None


def client_address(remote: Optional[str], forwarded_for: Optional[str], trust_forwarded: bool) -> str:
    """The client's address: the peer's, or behind one trusted proxy the last X-Forwarded-For entry."""
    if trust_forwarded and forwarded_for:
        last = forwarded_for.split(",")[-1].strip()
        if last:
            return last
    return remote or "?"
