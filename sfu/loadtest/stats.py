"""What one load-test client observed, and how observations are summarised.

A :class:`ClientRecorder` is fed the client's signaling messages and decoded frames (with their
stamps) and keeps the per-client measures: start → paired, paired/Next → first partner frame,
received fps, freezes, latency, and errors by kind. It knows whose frame is whose: after ``paired``
the first stamped frame from someone other than the previous partner identifies the new partner;
from then on a frame from anyone but the current partner (or trailing frames of the previous one)
is an ``unexpected_sender`` error, i.e. the server showed somebody else's picture.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from ..headless.stamp import Stamp
from .media import VideoSpec, latency_seconds

FREEZE_SECONDS = 0.5
"""No new partner frame for longer than this while paired counts as a freeze."""

NO_FRAME_SECONDS = 5.0
"""A pairing that lasts this long without a single partner frame is an error."""

MAX_LATENCY_SAMPLES = 3000
"""Latency samples kept per client for the final percentiles (every frame up to this, then
every n-th)."""


def percentiles(values: Iterable[float]) -> dict[str, Optional[float]]:
    data = sorted(v for v in values if v is not None and not math.isnan(v))
    if not data:
        return {"count": 0, "p50": None, "p95": None, "max": None, "mean": None}

    def pick(q: float) -> float:
        # nearest-rank percentile
        rank = max(0, min(len(data) - 1, math.ceil(q * len(data)) - 1))
        return data[rank]

    return {
        "count": len(data),
        "p50": pick(0.50),
        "p95": pick(0.95),
        "max": data[-1],
        "mean": sum(data) / len(data),
    }


@dataclass
class Pairing:
    trigger: str  #: "start", "next" (this client pressed Next) or "partner_left"
    triggered_at: float  #: monotonic time of the trigger
    paired_at: float
    partner: str
    sender: Optional[int] = None  #: the partner's stamp id, once learnt
    first_frame_at: Optional[float] = None
    last_frame_at: Optional[float] = None
    ended_at: Optional[float] = None
    frames: int = 0
    freezes: int = 0
    freeze_seconds: float = 0.0
    last_latency: Optional[float] = None
    last_wall: float = 0.0
    last_index: int = 0


@dataclass
class ClientRecorder:
    sender: int
    spec: VideoSpec
    pairings: list[Pairing] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    start_sent_at: Optional[float] = None
    nexts_sent: int = 0
    frames_total: int = 0
    frames_partner: int = 0
    frames_unstamped: int = 0  #: placeholder pictures while waiting (and unreadable frames)
    frames_stale: int = 0  #: trailing frames of a previous partner
    audio_frames: int = 0
    latencies: list[float] = field(default_factory=list)  #: seconds
    _latency_stride: int = 1
    _latency_seen: int = 0
    _pending: Optional[tuple[str, float]] = None
    _known: dict[str, int] = field(default_factory=dict)  #: partner opaque id -> stamp id
    _closing: bool = False
    # interval counters, drained by :meth:`drain_interval` once a second
    _tick_frames: int = 0
    _tick_latencies: list[float] = field(default_factory=list)

    # -- inputs ----------------------------------------------------------------------------------
    @property
    def current(self) -> Optional[Pairing]:
        if self.pairings and self.pairings[-1].ended_at is None:
            return self.pairings[-1]
        return None

    @property
    def paired(self) -> bool:
        return self.current is not None

    def start_sent(self, now: float) -> None:
        self.start_sent_at = now
        self._pending = ("start", now)

    def next_sent(self, now: float) -> None:
        self.nexts_sent += 1
        self._end_current(now)
        self._pending = ("next", now)

    def closing(self) -> None:
        self._closing = True

    def message(self, msg: dict, now: float) -> None:
        kind = msg.get("type")
        if kind == "paired":
            self._end_current(now)
            trigger, at = self._pending or ("partner_left", now)
            self._pending = None
            partner = str(msg.get("partner", ""))
            self.pairings.append(Pairing(trigger, at, now, partner, sender=self._known.get(partner)))
        elif kind == "partner_left":
            self._end_current(now)
            self._pending = ("partner_left", now)
        elif kind == "error":
            self.errors[f"server:{msg.get('code', '?')}"] += 1
        elif kind == "_closed" and not self._closing:
            self.errors["socket_closed"] += 1

    def frame(self, stamp: Optional[Stamp], now: float, wall: float) -> None:
        self.frames_total += 1
        if stamp is None:
            self.frames_unstamped += 1
            return
        if stamp.sender == self.sender:
            self.errors["own_picture"] += 1
            return
        current = self.current
        previous = self.pairings[-2].sender if len(self.pairings) >= 2 else None
        if current is None:
            self.frames_stale += 1
            return
        if current.sender is None:
            if stamp.sender == previous:
                self.frames_stale += 1
                return
            current.sender = stamp.sender
            self._known[current.partner] = stamp.sender
        if stamp.sender != current.sender:
            if stamp.sender == previous:
                self.frames_stale += 1
            else:
                self.errors["unexpected_sender"] += 1
            return
        self._partner_frame(current, stamp, now, wall)

    def _partner_frame(self, p: Pairing, stamp: Stamp, now: float, wall: float) -> None:
        self.frames_partner += 1
        self._tick_frames += 1
        if p.first_frame_at is None:
            p.first_frame_at = now
        elif now - (p.last_frame_at or now) > FREEZE_SECONDS:
            p.freezes += 1
            p.freeze_seconds += now - (p.last_frame_at or now)
        p.last_frame_at = now
        p.frames += 1
        if stamp.frame < self.spec.loop_frames:
            latency = latency_seconds(stamp.frame, wall, self.spec)
            # The loop index gives latency modulo the loop period. Between two frames received
            # close together, the latency changes by the receive interval minus the send
            # interval (read from the index step), which follows it across the wrap when a queue
            # grows past a period without mistaking a flushed backlog for a wrap.
            period = self.spec.period
            if p.last_latency is not None and wall - p.last_wall < period / 2:
                step = ((stamp.frame - p.last_index) % self.spec.loop_frames) / self.spec.fps
                expected = p.last_latency + (wall - p.last_wall) - step
                latency += max(0, round((expected - latency) / period)) * period
            p.last_latency, p.last_wall, p.last_index = latency, wall, stamp.frame
            self._tick_latencies.append(latency)
            self._latency_seen += 1
            if self._latency_seen % self._latency_stride == 0:
                self.latencies.append(latency)
                if len(self.latencies) >= MAX_LATENCY_SAMPLES:
                    self.latencies = self.latencies[::2]
                    self._latency_stride *= 2
        else:
            self.errors["bad_stamp"] += 1

    def _end_current(self, now: float) -> None:
        p = self.current
        if p is None:
            return
        p.ended_at = now
        if p.first_frame_at is None:
            if now - p.paired_at > NO_FRAME_SECONDS:
                self.errors["no_partner_frame"] += 1
        elif p.last_frame_at is not None and now - p.last_frame_at > FREEZE_SECONDS:
            # The picture stopped well before the pairing ended.
            p.freezes += 1
            p.freeze_seconds += now - p.last_frame_at

    def finish(self, now: float) -> None:
        """End of the run: close the open pairing (as if the client left)."""
        self._closing = True
        self._end_current(now)

    def drain_interval(self) -> tuple[int, list[float]]:
        frames, lat = self._tick_frames, self._tick_latencies
        self._tick_frames, self._tick_latencies = 0, []
        return frames, lat

    def paired_seconds(self, now: float) -> float:
        return sum((p.ended_at or now) - p.paired_at for p in self.pairings)

    # -- summary ---------------------------------------------------------------------------------
    def summary(self, now: float, extra: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        first = next((p for p in self.pairings if p.trigger == "start"), None)
        start_to_paired = (
            first.paired_at - first.triggered_at if first is not None and self.start_sent_at is not None else None
        )
        if not self.pairings:
            self.errors["never_paired"] += 1
        receiving = sum(
            ((p.ended_at or now) - p.first_frame_at) for p in self.pairings if p.first_frame_at is not None
        )
        return {
            "sender": self.sender,
            "pairings": len(self.pairings),
            "nexts_sent": self.nexts_sent,
            "start_to_paired_s": start_to_paired,
            "paired_to_first_frame_s": [
                p.first_frame_at - p.paired_at for p in self.pairings if p.first_frame_at is not None
            ],
            "next_to_first_frame_s": [
                p.first_frame_at - p.triggered_at
                for p in self.pairings
                if p.trigger == "next" and p.first_frame_at is not None
            ],
            #: The new partner's stamp id for each of ``next_to_first_frame_s`` (None: not read).
            "next_partners": [p.sender for p in self.pairings if p.trigger == "next" and p.first_frame_at is not None],
            "paired_seconds": self.paired_seconds(now),
            "receiving_seconds": receiving,
            "fps": self.frames_partner / receiving if receiving > 0.5 else None,
            "freezes": sum(p.freezes for p in self.pairings),
            "freeze_seconds": sum(p.freeze_seconds for p in self.pairings),
            "frames_total": self.frames_total,
            "frames_partner": self.frames_partner,
            "frames_unstamped": self.frames_unstamped,
            "frames_stale": self.frames_stale,
            "audio_frames": self.audio_frames,
            "latency_s": self.latencies,
            "errors": dict(self.errors),
            **(extra or {}),
        }
