"""Load-test clients for Janus's VideoRoom, in worker processes as ``sfu loadtest`` runs its own.

Each person of pair ``k`` publishes in room ``room_base + k`` under feed id = its sender number, on
one plugin handle and peer connection (the same pre-encoded VP8 loop + Opus replay the load tester
sends, keyframes on request), and subscribes to its partner's feed on a second handle and peer
connection, whose receivers count packets and frames (marker bit) without decoding; with
``Plan.decode`` they decode instead, reading each picture's stamp, as ``sfu loadtest``'s clients
do (the same client work on both sides of the comparison). Both handles share the person's Janus
session (one long poll, one keepalive).

A person is "paired" once its subscription has started (Janus answered ``start``): from then on its
time counts as pair time, as ``sfu loadtest`` counts from the ``paired`` message.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import av
from aiortc import (
    MediaStreamError,
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)

from benchmarks.janus_api import JanusError, JanusHandle, JanusSession, PluginReply
from sfu.headless import stamp as stamps
from sfu.loadtest.media import ReplayAudioTrack, ReplayVideoTrack, VideoSpec, encode_audio_loop, load_video_loop
from sfu.loadtest.worker import Channels
from sfu.media.aiortc_hooks import testing
from sfu.media.aiortc_hooks.ice import set_host_addresses

STEP_TIMEOUT = 20.0
#: VideoRoom's "no such feed": the partner has not published yet (it starts later in the ramp).
NO_SUCH_FEED = 428
CLOSE_TIMEOUT = 10.0


@dataclass(frozen=True)
class Plan:
    url: str  #: Janus's HTTP API, e.g. http://127.0.0.1:8088/janus
    spec: VideoSpec
    pairs: int
    ramp: float
    duration: float
    room_base: int
    host_addresses: tuple[str, ...] = ("127.0.0.1",)
    cache_dir: str | None = None
    decode: bool = False  #: decode what is received (and read the stamps) instead of only counting

    @property
    def clients(self) -> int:
        return 2 * self.pairs


def room_of(sender: int, plan: Plan) -> int:
    """Senders 1 and 2 share the first room, 3 and 4 the second, ..."""
    return plan.room_base + (sender - 1) // 2


def partner_of(sender: int) -> int:
    return sender + 1 if sender % 2 else sender - 1


def split(clients: int, workers: int) -> list[list[int]]:
    """Senders dealt round-robin over the workers: both halves of a pair run in different workers
    (with two or more), and the ramp interleaves them."""
    groups: list[list[int]] = [[] for _ in range(max(1, workers))]
    for i in range(clients):
        groups[i % len(groups)].append(i + 1)
    return [g for g in groups if g]


@dataclass
class Decoded:
    """What a decoding receiver got (the counting one's fields; packets are not seen here)."""

    packets: int = 0
    frames: int = 0
    keyframes: int = 0
    first_frame_at: float | None = None
    stamped: int = 0  #: video pictures whose stamp was read

    async def read(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if isinstance(frame, av.VideoFrame) and stamps.read_frame(frame) is not None:
                    self.stamped += 1
                self.frames += 1
                if self.first_frame_at is None:
                    self.first_frame_at = time.time()
        except MediaStreamError:
            pass


@dataclass
class Person:
    sender: int
    video: ReplayVideoTrack
    audio: ReplayAudioTrack
    start_at: float  #: wall clock
    session: JanusSession | None = None
    publisher: RTCPeerConnection | None = None
    subscriber: RTCPeerConnection | None = None
    counters: dict[str, testing.CountingBuffer | Decoded] = field(default_factory=dict)
    keyframe_requests: Any = None  #: () -> int, PLIs the publisher received
    published_at: float | None = None
    paired_at: float | None = None
    feed_retries: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    media: dict[str, Any] = field(default_factory=dict)
    readers: list[asyncio.Future[None]] = field(default_factory=list)


def worker_main(index: int, senders: list[int], plan: Plan, channels: Channels) -> None:
    """Entry point of a worker process (``multiprocessing`` spawn)."""
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("aioice", "aiortc"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    try:
        cache = Path(plan.cache_dir) if plan.cache_dir else None
        loops = [load_video_loop(s, plan.spec, cache) for s in senders]
        audio = encode_audio_loop()
        channels.out.put(("ready", index, {}))
        parent = os.getppid()
        while not channels.go.wait(0.2):
            if channels.stop.is_set() or os.getppid() != parent:
                channels.out.put(("done", index, {"people": []}))
                return
        go = channels.go_time.value
        people = [
            Person(s, ReplayVideoTrack(loop), ReplayAudioTrack(audio), go + plan.ramp * (s - 1) / plan.clients)
            for s, loop in zip(senders, loops)
        ]
        cpu = time.process_time()
        result = asyncio.run(_run(people, plan, channels, go))
        result["cpu_seconds"] = time.process_time() - cpu
        result["wall_seconds"] = time.time() - go
        channels.out.put(("done", index, result))
    except BaseException as exc:  # the parent must always hear back
        channels.out.put(("failed", index, {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}))


async def _run(people: list[Person], plan: Plan, channels: Channels, go: float) -> dict[str, Any]:
    end = go + plan.duration
    parent = os.getppid()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        tasks = [asyncio.ensure_future(_life(p, plan, http, end)) for p in people]
        try:
            while time.time() < end and not channels.stop.is_set() and os.getppid() == parent:
                await asyncio.sleep(min(0.2, max(0.0, end - time.time())))
        finally:
            ended = time.time()
            snapshots = [_snapshot(p, ended) for p in people]
            await asyncio.gather(*(_collect_stats(p) for p in people), return_exceptions=True)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*(_close(p) for p in people), return_exceptions=True)
    for person, snap in zip(people, snapshots):
        snap["media"] = person.media
        snap["errors"] = dict(person.errors)  # with any stats errors
    return {"people": snapshots}


async def _life(person: Person, plan: Plan, http: aiohttp.ClientSession, end: float) -> None:
    delay = person.start_at - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    step = "session"
    try:
        person.session = session = JanusSession(http, plan.url)
        await session.create()
        step = "publish"
        await asyncio.wait_for(_publish(person, plan, await session.attach()), STEP_TIMEOUT)
        step = "subscribe"
        await _subscribe(person, plan, await session.attach(), end)
    except asyncio.CancelledError:
        raise
    except JanusError as exc:
        person.errors[f"{step}:janus-{exc.code}"] += 1
        logging.warning("sender %d: %s: %s", person.sender, step, exc)
    except Exception as exc:
        person.errors[f"{step}:{type(exc).__name__}"] += 1
        logging.warning("sender %d: %s: %r", person.sender, step, exc)


def _peer_connection() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN: loopback only


async def _publish(person: Person, plan: Plan, handle: JanusHandle) -> None:
    await handle.message({"request": "join", "ptype": "publisher", "room": room_of(person.sender, plan),
                          "id": person.sender, "display": f"sender {person.sender}"})
    person.publisher = pc = _peer_connection()
    pc.addTransceiver(person.audio, direction="sendonly")
    video = pc.addTransceiver(person.video, direction="sendonly")
    # The replay loop is VP8: offer nothing else (RTX kept, as the load tester's clients offer it).
    codecs = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType in ("video/VP8", "video/rtx")]
    video.setCodecPreferences(codecs)
    set_host_addresses(pc, plan.host_addresses)
    await pc.setLocalDescription(await pc.createOffer())
    reply = await handle.message({"request": "publish", "audio": True, "video": True},
                                 jsep={"type": "offer", "sdp": pc.localDescription.sdp})
    if reply.jsep is None or reply.jsep.get("type") != "answer":
        raise JanusError(0, f"publish: no answer in {reply.data}")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=reply.jsep["sdp"], type="answer"))
    await handle.trickle_done()
    sender = video.sender
    person.video.keyframe_requested = functools.partial(testing.take_keyframe_request, sender)
    person.keyframe_requests = testing.count_keyframe_requests(sender)
    person.published_at = time.time()


async def _subscribe(person: Person, plan: Plan, handle: JanusHandle, end: float) -> None:
    reply, person.feed_retries = await join_partner_feed(
        handle, room_of(person.sender, plan), partner_of(person.sender), min(end - time.time(), STEP_TIMEOUT))
    if reply.jsep is None or reply.jsep.get("type") != "offer":
        raise JanusError(0, f"subscribe: no offer in {reply.data}")
    person.subscriber = pc = _peer_connection()

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if plan.decode:
            decoded = person.counters[track.kind] = Decoded()
            person.readers.append(asyncio.ensure_future(decoded.read(track)))
            return
        receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
        person.counters[track.kind] = testing.count_received(receiver, time.time)

    await pc.setRemoteDescription(RTCSessionDescription(sdp=reply.jsep["sdp"], type="offer"))
    set_host_addresses(pc, plan.host_addresses)
    await pc.setLocalDescription(await pc.createAnswer())
    await asyncio.wait_for(handle.message({"request": "start"}, jsep={"type": "answer", "sdp": pc.localDescription.sdp}),
                           STEP_TIMEOUT)
    await handle.trickle_done()
    person.paired_at = time.time()


async def join_partner_feed(handle: JanusHandle, room: int, feed: int, timeout: float) -> tuple[PluginReply, int]:
    """Join ``room`` as a subscriber to ``feed``, again every 0.2 s while it is not published yet
    (the partner may start later in the ramp, or in the other worker): Janus's reply (with its offer)
    and how many joins were refused first."""
    join = {"request": "join", "ptype": "subscriber", "room": room, "streams": [{"feed": feed}]}
    deadline = time.monotonic() + timeout
    retries = 0
    while True:
        try:
            return await handle.message(join), retries
        except JanusError as exc:
            if exc.code != NO_SUCH_FEED or time.monotonic() > deadline:
                raise
            retries += 1
            await asyncio.sleep(0.2)


def _snapshot(person: Person, now: float) -> dict[str, Any]:
    """Everything measured about ``person`` up to ``now`` (before anything closes)."""
    out: dict[str, Any] = {
        "sender": person.sender,
        "published_at": person.published_at,
        "paired_at": person.paired_at,
        "paired_seconds": now - person.paired_at if person.paired_at else 0.0,
        "ended_at": now,
        "feed_retries": person.feed_retries,
        "keyframe_requests": person.keyframe_requests() if person.keyframe_requests else 0,
        "video_frames_sent": person.video.frames_sent,
        "video_keyframes_sent": person.video.keyframes_sent,
        "video_intra_sent": person.video.intra_sent,
        "video_skipped_slots": person.video.skipped_slots,
        "errors": dict(person.errors),
    }
    for kind in ("video", "audio"):
        counter = person.counters.get(kind)
        first = counter.first_frame_at if counter else None
        out[kind] = {
            "packets": counter.packets if counter else 0,
            "frames": counter.frames if counter else 0,
            "keyframes": counter.keyframes if counter else 0,
            "first_frame_at": first,
            "fps": counter.frames / (now - first) if counter and first and now - first > 0.5 else None,
        }
    log = person.session.log if person.session else None
    out["janus_events"] = dict(log.kinds) if log else {}
    out["slowlink"] = log.slowlink if log else 0
    out["hangups"] = list(log.hangups) if log else []
    return out


async def _collect_stats(person: Person) -> None:
    for role, pc in (("publisher", person.publisher), ("subscriber", person.subscriber)):
        if pc is None:
            continue
        try:
            report = await asyncio.wait_for(pc.getStats(), 5.0)
        except Exception as exc:
            person.errors[f"stats:{type(exc).__name__}"] += 1
            continue
        for stats in report.values():
            kind = getattr(stats, "kind", None)
            if stats.type == "inbound-rtp":
                person.media[f"{kind}_packets_received"] = stats.packetsReceived
                person.media[f"{kind}_packets_lost"] = max(0, stats.packetsLost)
            elif stats.type == "transport":
                person.media[f"{role}_bytes_received"] = stats.bytesReceived
                person.media[f"{role}_bytes_sent"] = stats.bytesSent


async def _close(person: Person) -> None:
    for reader in person.readers:
        reader.cancel()
    await asyncio.gather(*person.readers, return_exceptions=True)
    for track in (person.video, person.audio):
        track.stop()
    for pc in (person.publisher, person.subscriber):
        if pc is not None:
            try:
                await asyncio.wait_for(pc.close(), CLOSE_TIMEOUT)
            except Exception:
                pass
    if person.session is not None:
        try:
            await asyncio.wait_for(person.session.destroy(), CLOSE_TIMEOUT)
        except Exception:
            pass
