"""Prometheus metrics for one :class:`~sfu.server.Server` (its own registry: servers never clash).

The server calls the ``on_*`` methods at the moments they name; gauges of the current population are
read from the server when scraped. Media code never imports this module: it is handed callables.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterable, Optional

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

from . import __version__

CONTENT_TYPE = CONTENT_TYPE_LATEST

_PAIR_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)
_FRAME_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10)
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
#: What made a pair (see sfu.pairing.events.Basis).
_BASES = ("interest", "language", "any")


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> Optional[float]:
    """The ``q`` quantile of a histogram, as Prometheus' ``histogram_quantile`` estimates it.

    ``buckets`` are (upper bound, cumulative count) pairs, the last bound being ``+Inf``. Linear
    interpolation inside the bucket holding the quantile; the highest finite bound when it falls in
    the ``+Inf`` bucket; None when nothing was observed.
    """
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


class ServerMetrics:
    def __init__(
        self,
        *,
        connected: Callable[[], float],
        waiting: Callable[[], float],
        paired: Callable[[], float],
        draining: Callable[[], float],
        directions: Optional[Callable[[], dict[str, dict[str, int]]]] = None,
        overloaded: Callable[[], float] = lambda: 0,
        cpu: Callable[[], float] = lambda: 0,
        identity: Optional[dict[str, str]] = None,
    ) -> None:
        self.registry = r = CollectorRegistry()
        Info("sfu_build", "Server version", registry=r).info({"version": __version__})
        if identity:
            Info("sfu_worker", "Which process of the node answered: worker id and pid", registry=r).info(identity)
        for name, doc, read in (
            ("sfu_participants_connected", "Participants with an open signaling connection", connected),
            ("sfu_participants_waiting", "Participants waiting for a partner", waiting),
            ("sfu_participants_paired", "Participants currently paired (two per pair)", paired),
            ("sfu_draining", "1 while the server is shutting down", draining),
            ("sfu_overloaded", "1 while this process refuses newcomers because it is near saturation", overloaded),
            ("sfu_process_cpu_cores", "CPU this process used over the last 2 s, in cores", cpu),
        ):
            Gauge(name, doc, registry=r).set_function(read)
        self.connections = Counter("sfu_connections", "Signaling connections accepted", registry=r)
        self.pairs = Counter(
            "sfu_pairs", "Pairs made, by the server's forwarding setting", ["forwarding"], registry=r
        )
        self._directions = directions
        self.directions = Gauge(
            "sfu_forwarding_directions",
            "Outbound media directions now forwarded encoded (passthrough), transcoded, starting or idle",
            ["kind", "mode"],
            registry=r,
        )
        self.nexts = Counter("sfu_nexts", "Next presses", registry=r)
        self.errors = Counter("sfu_errors", "Error replies sent to clients, by code", ["code"], registry=r)
        self.time_to_pair = Histogram(
            "sfu_time_to_pair_seconds", "From start (or Next, or partner leaving) to paired", buckets=_PAIR_BUCKETS, registry=r
        )
        self.pairs_by_basis = Counter(
            "sfu_pairs_by_basis",
            "Pairs made, by what the two have in common: interest, language, or any (nothing asked or found)",
            ["basis"],
            registry=r,
        )
        for basis in _BASES:
            self.pairs_by_basis.labels(basis=basis)
        self.time_to_first_frame = Histogram(
            "sfu_time_to_first_frame_seconds",
            "From paired to the partner's first video frame handed to the receiver's sender",
            buckets=_FRAME_BUCKETS,
            registry=r,
        )
        self.bytes = Counter("sfu_forwarded_bytes", "RTP bytes sent to participants, by kind", ["kind"], registry=r)
        self.packets = Counter("sfu_forwarded_packets", "RTP packets sent to participants, by kind", ["kind"], registry=r)
        self.loop_lag = Histogram(
            "sfu_event_loop_lag_seconds", "How late the event loop ran a timer", buckets=_LAG_BUCKETS, registry=r
        )
        self.loop_lag_last = Gauge("sfu_event_loop_lag_last_seconds", "The last event-loop lag measured", registry=r)
        self._looking_since: dict[str, float] = {}
        self._paired_at: dict[str, float] = {}
        self._sent: dict[tuple[str, str], tuple[int, int]] = {}

    def render(self) -> bytes:
        if self._directions is not None:
            self.directions.clear()
            for kind, modes in self._directions().items():
                for mode, count in modes.items():
                    self.directions.labels(kind=kind, mode=mode).set(count)
        return generate_latest(self.registry)

    # -- events ----------------------------------------------------------------------------------
    def on_connected(self) -> None:
        self.connections.inc()

    def on_error(self, code: str) -> None:
        """An error reply with ``code`` was sent to a client."""
        self.errors.labels(code=str(code)).inc()

    def on_looking(self, session_id: str, now: float) -> None:
        """The participant started looking for a partner (start, Next, or partner left)."""
        self._looking_since.setdefault(session_id, now)
        self._paired_at.pop(session_id, None)

    def on_next(self) -> None:
        self.nexts.inc()

    def on_paired(self, a: str, b: str, forwarding: str, now: float, basis: str = "any") -> None:
        self.pairs.labels(forwarding=forwarding).inc()
        self.pairs_by_basis.labels(basis=basis).inc()
        for who in (a, b):
            self.on_partnered(who, now)

    def on_partnered(self, who: str, now: float) -> None:
        """``who`` got a partner (the pair itself is counted by :meth:`on_paired`, once, where it was made)."""
        since = self._looking_since.pop(who, None)
        if since is not None:
            self.time_to_pair.observe(max(0.0, now - since))
        self._paired_at[who] = now

    def time_to_pair_quantiles(self) -> dict[str, Optional[float]]:
        """Median and 95th percentile of the time to pair so far, estimated from the histogram."""
        buckets = [
            (float(sample.labels["le"]), sample.value)
            for metric in self.time_to_pair.collect()
            for sample in metric.samples
            if sample.name.endswith("_bucket")
        ]
        return {
            "p50": histogram_quantile(0.50, buckets),
            "p95": histogram_quantile(0.95, buckets),
        }

    def on_unpaired(self, session_id: str) -> None:
        """Idle: neither looking nor paired."""
        self._looking_since.pop(session_id, None)
        self._paired_at.pop(session_id, None)

    def first_frame_callback(self, session_id: str) -> Callable[[], None]:
        """For a receiver's outbound video track: called on the first frame after each switch."""

        def first_frame() -> None:
            paired_at = self._paired_at.pop(session_id, None)
            if paired_at is not None:
                self.time_to_first_frame.observe(max(0.0, time.monotonic() - paired_at))

        return first_frame

    def on_loop_lag(self, lag: float) -> None:
        self.loop_lag.observe(lag)
        self.loop_lag_last.set(lag)

    async def sample_media(self, session_id: str, pc: Any) -> None:
        """Add what ``pc``'s senders sent since the last sample (aiortc's outbound-rtp stats)."""
        for sender in list(pc.getSenders()):
            try:
                report = await sender.getStats()
            except Exception:  # transport not started or already closed: nothing sent to count
                continue
            for stats in list(report.values()):
                if getattr(stats, "type", None) != "outbound-rtp":
                    continue
                kind = str(getattr(stats, "kind", "") or "unknown")
                key = (session_id, kind)
                sent_bytes, sent_packets = int(stats.bytesSent or 0), int(stats.packetsSent or 0)
                last_bytes, last_packets = self._sent.get(key, (0, 0))
                self.bytes.labels(kind=kind).inc(max(0, sent_bytes - last_bytes))
                self.packets.labels(kind=kind).inc(max(0, sent_packets - last_packets))
                self._sent[key] = (sent_bytes, sent_packets)

    def forget(self, session_id: str) -> None:
        self._looking_since.pop(session_id, None)
        self._paired_at.pop(session_id, None)
        for key in [k for k in self._sent if k[0] == session_id]:
            del self._sent[key]

