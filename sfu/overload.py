"""Overload shedding: a process near saturation stops taking newcomers before the people it already
serves notice.

A Python process forwards media on one event loop, so it saturates one core: timers then run late
(event-loop lag) and every stream stutters together. :class:`OverloadGuard` watches the loop's lag
and the process's CPU over a short window; above either limit it declares the process overloaded
(``/readyz`` answers 503 ``overloaded``, a newcomer gets ``server_full``, so a load balancer or the
kernel's SO_REUSEPORT spread sends people to another worker or node) while everyone already here
carries on. It recovers only once both measures have stayed well below their limits for a while
(hysteresis), so it does not flap. Pure logic: the caller passes the samples and ``now``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Optional

#: Seconds of samples the decision averages over.
WINDOW = 2.0
#: Back to accepting once both measures are below this share of their limits...
RELEASE = 0.8
#: ... continuously for this many seconds.
HOLD = 5.0


@dataclass(frozen=True)
class LoadLimits:
    """``max_loop_lag`` in seconds, ``max_cpu`` in cores (1.0 = one core busy); 0 disables each."""

    max_loop_lag: float
    max_cpu: float
    window: float = WINDOW
    release: float = RELEASE
    hold: float = HOLD


@dataclass(frozen=True)
class Load:
    """The measures over the last window (``None`` until the window holds enough samples)."""

    loop_lag: Optional[float]
    cpu: Optional[float]


@dataclass(frozen=True)
class _Sample:
    at: float
    lag: float
    cpu_seconds: float


class OverloadGuard:
    """Decides, from samples of event-loop lag and cumulative process CPU time, whether this process
    should refuse newcomers."""

    def __init__(self, limits: LoadLimits) -> None:
        self.limits = limits
        self.overloaded = False
        #: Why the process is overloaded (for logs and /healthz), ``None`` while it is not.
        self.reason: Optional[str] = None
        self._samples: deque[_Sample] = deque()
        self._calm_since: Optional[float] = None

    @property
    def enabled(self) -> bool:
        return self.limits.max_loop_lag > 0 or self.limits.max_cpu > 0

    def sample(self, now: float, lag: float, cpu_seconds: float) -> Optional[bool]:
        """Add one measurement: the loop's lag just measured and the process's CPU seconds so far.
        Returns the new state when it changed (True: now overloaded; False: recovered), else None."""
        samples = self._samples
        samples.append(_Sample(now, lag, cpu_seconds))
        # Keep one sample at or before the window's start as the CPU baseline.
        while len(samples) > 2 and samples[1].at <= now - self.limits.window:
            samples.popleft()
        load = self.load()
        if load.loop_lag is None or load.cpu is None or not self.enabled:
            return None
        if not self.overloaded:
            reason = self._over(load)
            if reason is None:
                return None
            self.overloaded, self.reason, self._calm_since = True, reason, None
            return True
        if self._over(load, self.limits.release) is not None:
            self._calm_since = None
            self.reason = self._over(load) or self.reason
            return None
        if self._calm_since is None:
            self._calm_since = now
        if now - self._calm_since < self.limits.hold:
            return None
        self.overloaded, self.reason, self._calm_since = False, None, None
        return False

    def load(self) -> Load:
        """Mean loop lag and CPU (cores) over the window; ``None`` before half a window of samples."""
        samples = self._samples
        if len(samples) < 2:
            return Load(None, None)
        first, last = samples[0], samples[-1]
        span = last.at - first.at
        if span < self.limits.window / 2:
            return Load(None, None)
        recent = [s.lag for s in samples if s.at > last.at - self.limits.window]
        return Load(
            loop_lag=sum(recent) / len(recent),
            cpu=max(0.0, (last.cpu_seconds - first.cpu_seconds) / span),
        )

    def _over(self, load: Load, share: float = 1.0) -> Optional[str]:
        """Which limit (times ``share``) ``load`` is above, if any."""
        limits = self.limits
        assert load.loop_lag is not None and load.cpu is not None
        if limits.max_loop_lag > 0 and load.loop_lag > limits.max_loop_lag * share:
            return f"event loop {load.loop_lag * 1000:.0f} ms late on average (limit {limits.max_loop_lag * 1000:.0f} ms)"
        if limits.max_cpu > 0 and load.cpu > limits.max_cpu * share:
            return f"CPU at {load.cpu:.2f} of a core (limit {limits.max_cpu:.2f})"
        return None
