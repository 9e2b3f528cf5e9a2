"""One-way latency of RTP packets between two clients on one machine, and what one path adds to another.

A client logs each RTP packet it sends and each one it receives, in the clear, with the time its
datagram left or reached the socket. A forwarding server rewrites a packet's header (SSRC,
sequence number, timestamp, extensions) and the start of its payload (the VP8 picture id), never
the end of the payload: a received packet is the sent one whose payload ends with the same
:data:`TAIL` bytes. A pre-encoded loop sends the same payloads again every loop period, and a
steady tone can give equal Opus packets a few packets apart, so the match is the *latest* packet
with that tail sent before the arrival and at most ``window`` seconds earlier, each sent packet
matched at most once. Nothing here reads a clock: every time is given.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..media.rtp.header import parse

TAIL = 16
"""Bytes at the end of a payload that identify a packet across a relay."""

WINDOW = 0.5
"""Longest one-way latency a match may show (seconds); shorter than the loops' periods (1 s audio,
4 s video), so that a packet never matches the same payload one period earlier."""

QUANTILES = (0.50, 0.95, 0.99)


def packet_key(packet: bytes) -> bytes | None:
    """The last :data:`TAIL` bytes of an RTP packet's payload (padding excluded), or ``None`` if
    ``packet`` is not RTP or its payload is shorter."""
    view = parse(packet)
    if view is None or view.payload_size < TAIL:
        return None
    return view.data[view.payload_end - TAIL : view.payload_end]


@dataclass(frozen=True, slots=True)
class Sent:
    at: float  #: when its datagram left the sender's socket (seconds, any one clock)
    key: bytes
    kind: str  #: "audio" or "video"


@dataclass(frozen=True, slots=True)
class Arrival:
    at: float  #: when its datagram reached the receiver's socket (the same clock)
    key: bytes


@dataclass
class Matching:
    """What :func:`match` found among the arrivals in its time span."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  #: seconds, by kind
    unmatched: int = 0  #: arrivals no sent packet explains (e.g. a server's own placeholder picture)
    lost: int = 0  #: packets sent in the span and never matched, though the window had passed

    def all(self) -> list[float]:
        return [v for values in self.latencies.values() for v in values]


def match(
    sent: Iterable[Sent],
    arrivals: Iterable[Arrival],
    *,
    since: float = -math.inf,
    until: float = math.inf,
    window: float = WINDOW,
) -> Matching:
    """Match each arrival to the packet it is (see the module's docstring).

    Every packet takes part in the matching, so that one sent before ``since`` is not mistaken for
    a later one; only arrivals within [``since``, ``until``] count, and only packets sent within
    [``since``, ``until - window``] can count as lost. ``sent`` and ``arrivals`` may come in any
    order.
    """
    outgoing = sorted(sent, key=lambda s: s.at)
    waiting: dict[bytes, deque[Sent]] = defaultdict(deque)
    matched: set[int] = set()  # ids of the Sent objects matched
    result = Matching()
    i = 0
    for arrival in sorted(arrivals, key=lambda a: a.at):
        while i < len(outgoing) and outgoing[i].at <= arrival.at:
            waiting[outgoing[i].key].append(outgoing[i])
            i += 1
        queue = waiting.get(arrival.key)
        while queue and queue[0].at < arrival.at - window:
            queue.popleft()  # too old to be this one, or anything later
        found = queue.pop() if queue else None
        if not since <= arrival.at <= until:
            if found is not None:
                matched.add(id(found))
            continue
        if found is None:
            result.unmatched += 1
        else:
            matched.add(id(found))
            result.latencies[found.kind].append(arrival.at - found.at)
    result.lost = sum(1 for s in outgoing if since <= s.at <= until - window and id(s) not in matched)
    return result


def quantile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank quantile ``q`` (0 < q <= 1) of ``values``; ``None`` when empty."""
    if not values:
        return None
    data = sorted(values)
    return data[max(0, min(len(data) - 1, math.ceil(q * len(data)) - 1))]


@dataclass(frozen=True)
class Summary:
    count: int
    quantiles: dict[float, float | None]  #: seconds, by q in :data:`QUANTILES`

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        return cls(len(values), {q: quantile(values, q) for q in QUANTILES})


def added(through: Summary, direct: Summary) -> dict[float, float | None]:
    """What a path adds to the direct one, quantile by quantile (``None`` where either has none)."""
    out: dict[float, float | None] = {}
    for q in QUANTILES:
        a, b = through.quantiles.get(q), direct.quantiles.get(q)
        out[q] = None if a is None or b is None else a - b
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.2f}"


def table(direct: Summary, through: Summary, through_label: str = "through the server") -> str:
    """A Markdown table: both paths' counts and quantiles (ms), and the difference."""
    header = "| path | packets | " + " | ".join(f"p{round(q * 100)} ms" for q in QUANTILES) + " |"
    rows = [header, "|---|---|" + "---|" * len(QUANTILES)]
    for label, summary in (("direct (loopback + clients)", direct), (through_label, through)):
        rows.append(f"| {label} | {summary.count} | " + " | ".join(_ms(summary.quantiles[q]) for q in QUANTILES) + " |")
    difference = added(through, direct)
    rows.append("| **added by the server** | | " + " | ".join(f"**{_ms(difference[q])}**" for q in QUANTILES) + " |")
    return "\n".join(rows)


def verdict(through: Summary, direct: Summary, target: float) -> tuple[bool | None, str]:
    """Whether the added p50 is within ``target`` seconds, and a sentence saying so."""
    p50 = added(through, direct)[0.50]
    if p50 is None:
        return None, "no verdict: a path delivered no packet"
    met = p50 <= target
    return met, f"added p50 {p50 * 1000:.2f} ms {'<=' if met else '>'} {target * 1000:g} ms: {'met' if met else 'NOT met'}"
