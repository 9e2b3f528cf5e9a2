"""The server's background loops: the ``online`` count, rematch cooldowns, session deadlines, media
statistics and the event loop's own lag.

Each loop sleeps, then runs one round with ``now`` read once; the decisions inside a round
(:class:`OnlineBroadcast`, :func:`due_timeouts`, :func:`loop_lag`) take ``now`` or their inputs from
the caller and are unit tested.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable, Optional

from ..config import Config
from ..limits import SessionLimits
from ..metrics import ServerMetrics
from ..overload import OverloadGuard
from .errors import ErrorCode
from .outgoing import Error, Online
from .switchboard import Switchboard
from .tasks import ClosingTasks

log = logging.getLogger(__name__)

#: Seconds between two rounds of the cooldown and deadline sweeps.
SWEEP_INTERVAL = 0.5
#: Seconds between two event-loop lag measurements.
LAG_INTERVAL = 0.25


class OnlineBroadcast:
    """Decides when to tell everyone how many people are connected: only when the count changed."""

    def __init__(self) -> None:
        self.sent: Optional[int] = None

    def due(self, count: int) -> bool:
        """True when ``count`` must be sent (and it is then remembered as sent)."""
        if count == self.sent:
            return False
        self.sent = count
        return True


@dataclass(frozen=True)
class SessionState:
    """What a session's deadlines depend on, besides its clock in :class:`SessionLimits`."""

    id: str
    #: The peer connection reached "connected".
    media_connected: bool
    #: Waiting or paired (then silence is fine).
    active: bool


def due_timeouts(limits: SessionLimits, sessions: Iterable[SessionState], now: float) -> list[tuple[str, str]]:
    """The sessions to close at ``now``, with the reason for the client; each is decided once."""
    due = []
    for state in sessions:
        if state.media_connected:
            limits.media_connected(state.id)
        why = limits.overdue(state.id, now, active=state.active)
        if why is not None:
            limits.closed(state.id)
            due.append((state.id, why))
    return due


def loop_lag(before: float, after: float, interval: float) -> float:
    """How late a timer of ``interval`` seconds set at ``before`` fired at ``after``."""
    return max(0.0, after - before - interval)


class Housekeeping:
    def __init__(
        self,
        config: Config,
        switchboard: Switchboard,
        *,
        limits: SessionLimits,
        metrics: ServerMetrics,
        closing: ClosingTasks,
        overload: Optional[OverloadGuard] = None,
        cpu_clock: Callable[[], float] = time.process_time,
    ) -> None:
        self.config = config
        self.overload = overload
        self.cpu_clock = cpu_clock
        self.switchboard = switchboard
        self.limits = limits
        self.metrics = metrics
        self.closing = closing
        self.online = OnlineBroadcast()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.ensure_future(self._every(self.config.online_interval, self.broadcast_online, "online broadcast")),
            asyncio.ensure_future(self._every(SWEEP_INTERVAL, self.expire_cooldowns, "rematch sweep")),
            asyncio.ensure_future(self._every(SWEEP_INTERVAL, self.enforce_limits, "limits sweep")),
            asyncio.ensure_future(self._every(self.config.stats_interval, self.sample_media, "media statistics sweep")),
            asyncio.ensure_future(self._watch_loop()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # -- one round of each ------------------------------------------------------------------------
    async def broadcast_online(self, now: float) -> None:
        count = self.switchboard.online()
        if self.online.due(count):
            self.switchboard.send_all(Online(count))

    async def expire_cooldowns(self, now: float) -> None:
        """Pair people whose rematch cooldown with each other ended while they waited alone."""
        await self.switchboard.expire()

    async def enforce_limits(self, now: float) -> None:
        """Close half-open and idle sessions (error ``timeout``)."""
        sessions = self.switchboard.sessions
        states = [
            SessionState(
                id=session.id,
                media_connected=session.media is not None and session.media.pc.connectionState == "connected",
                active=self.switchboard.is_active(session.id),
            )
            for session in list(sessions.values())
        ]
        for session_id, why in due_timeouts(self.limits, states, now):
            session = sessions[session_id]
            log.info("session %s: timeout (%s)", session.id, why, extra={"event": "timeout", "session": session.id})
            session.send(Error(ErrorCode.TIMEOUT, why))
            self.closing.spawn(session.flush_and_close(1008, b"timeout"))

    async def sample_media(self, now: float) -> None:
        """Count bytes and packets sent to participants (for /metrics)."""
        for session in list(self.switchboard.sessions.values()):
            if session.media is not None and not session.closed:
                await self.metrics.sample_media(session.id, session.media.pc)

    # -- loops -----------------------------------------------------------------------------------
    async def _every(self, interval: float, step: Callable[[float], Awaitable[None]], what: str) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await step(time.monotonic())
            except Exception:
                log.exception("%s failed", what)

    async def _watch_loop(self) -> None:
        """Measure how late the event loop runs a timer (the server's own responsiveness) and feed
        the overload guard with it and the process's CPU time."""
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(LAG_INTERVAL)
            lag = loop_lag(before, loop.time(), LAG_INTERVAL)
            self.metrics.on_loop_lag(lag)
            if self.overload is not None:  # measured even with shedding off (/healthz, /metrics)
                self.watch_load(time.monotonic(), lag, self.cpu_clock())

    def watch_load(self, now: float, lag: float, cpu_seconds: float) -> None:
        """One sample for the overload guard; a log line when it changes its mind."""
        assert self.overload is not None
        changed = self.overload.sample(now, lag, cpu_seconds)
        if changed is True:
            log.warning("overloaded: %s; refusing newcomers", self.overload.reason,
                        extra={"event": "overloaded", "reason": self.overload.reason})
        elif changed is False:
            log.info("load back to normal; accepting newcomers", extra={"event": "recovered"})
