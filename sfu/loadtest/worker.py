"""One load-test worker process: prepares media for its clients, runs them, reports to the parent.

The parent starts one worker per core (``multiprocessing`` spawn context). Each worker:

1. encodes (or loads from the cache) the replay loop of each of its clients and reports ``ready``;
2. waits for the parent's ``go`` (a shared wall-clock start time), then starts its clients at their
   ramp times, each one connecting, sending ``start`` and, with ``next_every``, pressing Next;
3. sends a ``tick`` every second (connected/paired clients, partner frames, latencies of the last
   second, errors) and, at the end, a ``done`` message with every client's summary.

Everything it starts is bounded: each connect has a timeout, the run ends at the planned time or
when the parent sets ``stop``, and closing the clients is itself time-limited.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import av
from aiortc import MediaStreamError, MediaStreamTrack, RTCRtpReceiver

from ..headless import nacks
from ..headless import stamp as stamps
from ..headless.client import HeadlessClient
from ..media.aiortc_hooks.testing import take_keyframe_request
from ..media.encoded import EncodedFrame
from .media import (
    ReplayAudioTrack,
    ReplayVideoTrack,
    VideoSpec,
    encode_audio_loop,
    load_video_loop,
)
from .recognise import FrameCatalog, tap_frames
from .stats import ClientRecorder

CONNECT_TIMEOUT = 20.0
CLOSE_TIMEOUT = 10.0


@dataclass(frozen=True)
class Plan:
    """Everything a worker needs to know (pickled to the worker process)."""

    urls: tuple[str, ...]  #: the servers; client k (from 1) goes to ``urls[(k - 1) % len(urls)]``
    spec: VideoSpec
    clients: int  #: total clients in the run (for the ramp schedule)
    ramp: float
    duration: float
    next_every: float = 0.0
    audio: bool = True
    decode: bool = True  #: False: received frames are recognised by their bytes (:mod:`.recognise`)
    host_addresses: tuple[str, ...] = ("127.0.0.1",)
    cache_dir: str | None = None
    seed: int = 0

    def url_for(self, sender: int) -> str:
        """The server client ``sender`` (numbered from 1) connects to: round-robin over ``urls``."""
        return self.urls[(sender - 1) % len(self.urls)]


@dataclass
class Channels:
    """The multiprocessing primitives shared with the parent."""

    out: Any  #: Queue of (kind, worker index, payload)
    go: Any  #: Event set once ``go_time`` holds the start time
    go_time: Any  #: Value('d'): wall-clock start time
    stop: Any  #: Event: end the run now


class LoadClient(HeadlessClient):
    """A :class:`HeadlessClient` that feeds a :class:`ClientRecorder` instead of keeping frames."""

    def __init__(
        self,
        url: str,
        recorder: ClientRecorder,
        video: ReplayVideoTrack,
        audio: MediaStreamTrack | None,
        host_addresses: tuple[str, ...],
        catalog: FrameCatalog | None = None,
    ) -> None:
        super().__init__(
            url,
            recorder.sender,
            send_audio=audio is not None,
            host_addresses=host_addresses,
            video_codecs=["video/VP8"],  # the replay loop is VP8: never let H.264 be negotiated
            video_track=video,
            audio_track=audio,
        )
        self.recorder = recorder
        self.replay = video
        #: Received frames are recognised by their bytes, not decoded (``None``: decoded).
        self.catalog = catalog

    async def connect(self, timeout: float = CONNECT_TIMEOUT) -> None:
        await super().connect(timeout=timeout)
        assert self.pc is not None
        for transceiver in self.pc.getTransceivers():
            if transceiver.sender.track is self.replay:
                sender = transceiver.sender
                self.replay.keyframe_requested = functools.partial(take_keyframe_request, sender)

    async def _record_message(self, message: dict) -> None:
        self.recorder.message(message, time.monotonic())
        # Keep the base class's bookkeeping for expect(); drop media-free chatter to bound memory.
        if message.get("type") in ("online",):
            return
        await super()._record_message(message)

    def _track_arrived(self, track: MediaStreamTrack, receiver: RTCRtpReceiver) -> None:
        catalog = self.catalog
        if catalog is None:
            super()._track_arrived(track, receiver)
            return
        recorder = self.recorder
        if track.kind == "video":
            tap_frames(receiver, "video",
                       lambda frame: recorder.frame(catalog.stamp(frame.data), time.monotonic(), time.time()))
            self._tasks.append(asyncio.ensure_future(nacks.ask_again(receiver)))
        else:
            def count(frame: EncodedFrame) -> None:
                recorder.audio_frames += 1

            tap_frames(receiver, "audio", count)

    async def _read_video(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = cast(av.VideoFrame, await track.recv())
                stamp = stamps.read_frame(frame)
                self.recorder.frame(stamp, time.monotonic(), time.time())
        except MediaStreamError:
            pass

    async def _read_audio(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                await track.recv()
                self.recorder.audio_frames += 1
        except MediaStreamError:
            pass

    async def media_stats(self) -> dict[str, Any]:
        """Inbound/outbound RTP counters from getStats()."""
        out: dict[str, Any] = {}
        if self.pc is None:
            return out
        report = await self.pc.getStats()
        transports: dict[str, Any] = {}
        for stats in report.values():
            kind = getattr(stats, "kind", None)
            if stats.type == "inbound-rtp":
                out[f"{kind}_packets_received"] = stats.packetsReceived
                out[f"{kind}_packets_lost"] = max(0, stats.packetsLost)
            elif stats.type == "outbound-rtp":
                out[f"{kind}_packets_sent"] = stats.packetsSent
                out[f"{kind}_bytes_sent"] = stats.bytesSent
            elif stats.type == "transport":
                transports[stats.id] = stats
        # aiortc's inbound-rtp has no byte counter: the (bundled) transport's counts everything in.
        out["bytes_received"] = sum(t.bytesReceived for t in transports.values())
        out["bytes_sent"] = sum(t.bytesSent for t in transports.values())
        return out


@dataclass
class _Slot:
    recorder: ClientRecorder
    video: ReplayVideoTrack
    audio: ReplayAudioTrack | None
    start_at: float  #: wall-clock
    catalog: FrameCatalog | None = None  #: with ``--no-decode``
    client: LoadClient | None = None
    connected_at: float | None = None  #: monotonic
    stats: dict[str, Any] = field(default_factory=dict)


def worker_main(index: int, senders: list[int], plan: Plan, channels: Channels) -> None:
    """Entry point of a worker process."""
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("aioice", "aiortc"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        cache = Path(plan.cache_dir) if plan.cache_dir else None
        started = time.monotonic()
        loops = [load_video_loop(s, plan.spec, cache) for s in senders]
        # Without decoding, every client's loop is needed (any of them may be a partner): taken from
        # the cache once every worker has put its own there (after "ready"), else encoded here.
        others = [s for s in range(1, plan.clients + 1) if s not in senders]
        catalog = None
        if not plan.decode and cache is None:
            catalog = FrameCatalog([*loops, *(load_video_loop(s, plan.spec, None) for s in others)])
        audio = encode_audio_loop() if plan.audio else []
        channels.out.put(
            ("ready", index, {
                "prepare_seconds": time.monotonic() - started,
                "encode_cpu_seconds": sum(loop.encode_seconds for loop in loops),
            })
        )
        parent = os.getppid()
        while not channels.go.wait(0.2):
            if channels.stop.is_set() or os.getppid() != parent:
                channels.out.put(("done", index, {"clients": []}))
                return
        go = channels.go_time.value
        if not plan.decode and catalog is None:  # the other workers' loops are in the cache by now
            catalog = FrameCatalog([*loops, *(load_video_loop(s, plan.spec, cache) for s in others)])
        slots = [
            _Slot(
                ClientRecorder(s, plan.spec),
                ReplayVideoTrack(loop),
                ReplayAudioTrack(audio) if audio else None,
                go + plan.ramp * (s - 1) / max(1, plan.clients),
                catalog,
            )
            for s, loop in zip(senders, loops)
        ]
        cpu_before = time.process_time()
        result = asyncio.run(_run(index, slots, plan, channels, go))
        result["cpu_seconds"] = time.process_time() - cpu_before
        result["wall_seconds"] = time.time() - go
        channels.out.put(("done", index, result))
    except BaseException as exc:  # the parent must always hear back
        channels.out.put(("failed", index, {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}))


async def _run(index: int, slots: list[_Slot], plan: Plan, channels: Channels, go: float) -> dict:
    end = go + plan.duration
    parent = os.getppid()
    rng = random.Random(plan.seed * 1000 + index)
    tasks = [asyncio.ensure_future(_client_life(slot, plan, end, rng.random())) for slot in slots]
    ticker = asyncio.ensure_future(_ticker(index, slots, channels, go, end))
    try:
        # Until the planned end, the parent's stop, or the parent's death (never outlive it).
        while time.time() < end and not channels.stop.is_set() and os.getppid() == parent:
            await asyncio.sleep(min(0.2, max(0.0, end - time.time())))
    finally:
        ticker.cancel()
        await asyncio.gather(ticker, return_exceptions=True)
        ended = time.monotonic()
        for slot in slots:
            slot.recorder.finish(ended)
        # Media counters before anything closes, so that every client is measured over the run.
        await asyncio.gather(*(_collect_stats(slot) for slot in slots), return_exceptions=True)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(_close(slot) for slot in slots), return_exceptions=True)
    return {"clients": [_summary(slot, ended) for slot in slots]}


async def _client_life(slot: _Slot, plan: Plan, end: float, phase: float) -> None:
    rec = slot.recorder
    delay = slot.start_at - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    client = slot.client = LoadClient(plan.url_for(rec.sender), rec, slot.video, slot.audio, plan.host_addresses,
                                      slot.catalog)
    try:
        await asyncio.wait_for(client.connect(CONNECT_TIMEOUT), CONNECT_TIMEOUT)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        rec.errors[f"connect:{type(exc).__name__}"] += 1
        return
    slot.connected_at = time.monotonic()
    rec.start_sent(time.monotonic())
    await client.start()
    if plan.next_every <= 0:
        return
    # Press Next every ``next_every`` seconds, each client at its own phase, while receiving.
    await asyncio.sleep(plan.next_every * (0.5 + phase))
    while time.time() < end - 1.0:
        current = rec.current
        if current is not None and current.first_frame_at is not None:
            rec.next_sent(time.monotonic())
            await client.next()
            await asyncio.sleep(plan.next_every)
        else:
            await asyncio.sleep(0.2)


async def _ticker(index: int, slots: list[_Slot], channels: Channels, go: float, end: float) -> None:
    second = 0
    while True:
        second += 1
        await asyncio.sleep(max(0.0, go + second - time.time()))
        frames = 0
        latencies: list[float] = []
        for slot in slots:
            f, lat = slot.recorder.drain_interval()
            frames += f
            latencies += lat
        errors: dict[str, int] = {}
        for slot in slots:
            for kind, n in slot.recorder.errors.items():
                errors[kind] = errors.get(kind, 0) + n
        channels.out.put(
            (
                "tick",
                index,
                {
                    "second": second,
                    "connected": sum(1 for s in slots if s.connected_at is not None),
                    "paired": sum(1 for s in slots if s.recorder.paired),
                    "receiving": sum(
                        1 for s in slots if s.recorder.current is not None and s.recorder.current.first_frame_at
                    ),
                    "frames": frames,
                    "latencies": latencies,
                    "pairings": sum(len(s.recorder.pairings) for s in slots),
                    "errors": errors,
                    "generator_lateness_s": _lateness(slots),
                },
            )
        )


def _lateness(slots: list[_Slot]) -> float:
    sent = sum(s.video.frames_sent for s in slots)
    return sum(s.video.lateness_total for s in slots) / sent if sent else 0.0


async def _collect_stats(slot: _Slot) -> None:
    if slot.client is not None and slot.connected_at is not None:
        try:
            slot.stats = await asyncio.wait_for(slot.client.media_stats(), 5.0)
        except Exception as exc:
            slot.recorder.errors[f"stats:{type(exc).__name__}"] += 1
            return
        slot.stats["connected_seconds"] = time.monotonic() - slot.connected_at


async def _close(slot: _Slot) -> None:
    if slot.client is None:
        return
    slot.recorder.closing()
    try:
        await asyncio.wait_for(slot.client.close(), CLOSE_TIMEOUT)
    except (asyncio.TimeoutError, Exception):
        pass


def _summary(slot: _Slot, now: float) -> dict[str, Any]:
    video = slot.video
    extra = {
        "connected": slot.connected_at is not None,
        "url": slot.client.ws_url if slot.client is not None else None,
        "media": slot.stats,
        "video_frames_sent": video.frames_sent,
        "video_keyframes_sent": video.keyframes_sent,
        "video_skipped_slots": video.skipped_slots,
        "video_mean_lateness_s": video.lateness_total / video.frames_sent if video.frames_sent else None,
    }
    return slot.recorder.summary(now, extra)
