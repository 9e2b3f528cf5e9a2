"""Pre-encoded media for load-test clients: encode once, replay packets.

Encoding 640x480 VP8 costs a few milliseconds per frame, which would make the load generator the
bottleneck. Each client therefore encodes a short *loop* of stamped frames once, at start-up, and
its tracks then return ``av.Packet`` objects that aiortc packetizes without encoding.

The design has to solve two problems that live encoding solves for free:

Latency without a live clock
    A pre-encoded frame cannot carry the time it is sent. Instead the loop is *aligned to the wall
    clock*: slot ``n = floor(time * fps)`` is due at ``n / fps`` and carries loop index
    ``n mod L`` (the stamp's ``frame`` field). A receiver on the same machine (every load-test
    client is) recovers the due time of the frame it decoded as the latest instant before now whose
    slot index has that loop index, so the latency is ``((now * fps - index) mod L) / fps``: exact
    to the frame slot, measured from the nominal capture instant (so a sender that runs late counts
    against latency, as a late camera would). This is the latency modulo the loop period
    (``L / fps``, 4 s by default); :class:`~sfu.loadtest.stats.ClientRecorder` follows it across
    the wrap from one frame to the next.

Keyframes on request
    A forwarding server that does not re-encode asks the sender for a keyframe (PLI) on every
    partner switch; aiortc ignores that request when it is sent packets. Substituting a keyframe
    for one frame of a VP8 chain breaks every later frame of the chain (the golden/reference
    buffers then differ from what the encoder predicted from), so each loop holds two versions of
    every frame: the *chain* (a keyframe every ``gop`` frames, deltas in between) and an
    *intra* version (every frame a keyframe). After a keyframe request, a start or a skipped slot,
    the track sends intra frames until the chain reaches its next keyframe, then follows the chain:
    every frame decodes exactly, and the reaction is immediate.
"""

from __future__ import annotations

import asyncio
import fractions
import hashlib
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
from aiortc import MediaStreamError, MediaStreamTrack

from ..headless.stamp import Stamp, make_background, make_frame

VIDEO_TIME_BASE = fractions.Fraction(1, 90000)
AUDIO_RATE = 48000
AUDIO_TIME_BASE = fractions.Fraction(1, AUDIO_RATE)
AUDIO_SAMPLES = 960  # 20 ms

CACHE_VERSION = 1


@dataclass(frozen=True)
class VideoSpec:
    width: int = 640
    height: int = 480
    fps: int = 30
    bitrate: int = 800_000
    loop_seconds: float = 4.0
    gop_seconds: float = 0.5

    @property
    def loop_frames(self) -> int:
        return max(2, round(self.loop_seconds * self.fps))

    @property
    def gop(self) -> int:
        return max(1, round(self.gop_seconds * self.fps))

    @property
    def period(self) -> float:
        return self.loop_frames / self.fps


@dataclass
class VideoLoop:
    """One sender's pre-encoded loop: ``chain[i]`` (keyframe when ``i % gop == 0``) and ``intra[i]``."""

    sender: int
    spec: VideoSpec
    chain: list[bytes]
    intra: list[bytes]
    encode_seconds: float = 0.0


def _codec(spec: VideoSpec, bitrate: int, gop: int) -> av.video.codeccontext.VideoCodecContext:
    codec = av.CodecContext.create("libvpx", "w")
    codec.width = spec.width
    codec.height = spec.height
    codec.pix_fmt = "yuv420p"
    codec.time_base = fractions.Fraction(1, spec.fps)
    codec.bit_rate = bitrate
    codec.gop_size = gop
    codec.qmin = 2
    codec.qmax = 56
    # The settings aiortc's own VP8 encoder uses (CBR, realtime), single-threaded: encoding happens
    # before the run, in parallel over the worker processes.
    codec.options = {
        "bufsize": str(bitrate),
        "minrate": str(bitrate),
        "maxrate": str(bitrate),
        "cpu-used": "-6",
        "deadline": "realtime",
        "lag-in-frames": "0",
        "auto-alt-ref": "0",
        "static-thresh": "1",
        "undershoot-pct": "100",
        "overshoot-pct": "15",
    }
    codec.thread_count = 1
    return codec


def _encode_one(codec: av.video.codeccontext.VideoCodecContext, frame: av.VideoFrame, key: bool) -> bytes:
    if key:
        frame.pict_type = av.video.frame.PictureType.I
    data = b"".join(bytes(p) for p in codec.encode(frame))
    if not data:
        raise RuntimeError("VP8 encoder returned no data (lag-in-frames must be 0)")
    return data


def loop_stamp(sender: int, index: int, spec: VideoSpec) -> Stamp:
    """What frame ``index`` of ``sender``'s loop carries in its pixels."""
    return Stamp(sender, index, int(index * 1000.0 / spec.fps))


def encode_video_loop(sender: int, spec: VideoSpec) -> VideoLoop:
    """Encode ``spec.loop_frames`` stamped frames for ``sender`` (frame field = loop index)."""
    started = time.process_time()
    background = make_background(spec.width, spec.height)
    chain_codec = _codec(spec, spec.bitrate, spec.gop)
    # Intra frames get a larger budget, as a real encoder's keyframes do.
    intra_codec = _codec(spec, spec.bitrate * 3, 1)
    chain: list[bytes] = []
    intra: list[bytes] = []
    for i in range(spec.loop_frames):
        stamp = loop_stamp(sender, i, spec)
        for codec, out, key in ((chain_codec, chain, i % spec.gop == 0), (intra_codec, intra, True)):
            frame = make_frame(stamp, spec.width, spec.height, background)
            frame.pts = i
            frame.time_base = codec.time_base
            out.append(_encode_one(codec, frame, key))
    return VideoLoop(sender, spec, chain, intra, time.process_time() - started)


def default_cache_dir() -> Path:
    """Where encoded loops are kept between runs: ``$XDG_CACHE_HOME/sfu-loadtest`` (~/.cache)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sfu-loadtest"


def load_video_loop(sender: int, spec: VideoSpec, cache_dir: Path | None) -> VideoLoop:
    """:func:`encode_video_loop`, cached on disk under ``cache_dir`` (``None``: no cache)."""
    if cache_dir is None:
        return encode_video_loop(sender, spec)
    key = hashlib.sha1(repr((CACHE_VERSION, av.__version__, sender, spec)).encode()).hexdigest()[:20]
    path = cache_dir / f"vp8-{key}.pickle"
    try:
        with open(path, "rb") as f:
            loop = pickle.load(f)
        if isinstance(loop, VideoLoop) and loop.sender == sender and loop.spec == spec:
            loop.encode_seconds = 0.0
            return loop
    except (OSError, pickle.PickleError, EOFError, AttributeError):
        pass
    loop = encode_video_loop(sender, spec)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            pickle.dump(loop, f)
        os.replace(tmp, path)
    except OSError:
        pass
    return loop


def encode_audio_loop(seconds: float = 1.0, frequency_hz: float = 440.0) -> list[bytes]:
    """Opus packets (20 ms each) of a quiet sine tone, shared by every client of a worker."""
    import numpy as np

    codec = av.CodecContext.create("libopus", "w")
    codec.bit_rate = 32000
    codec.format = "s16"
    codec.layout = "stereo"
    codec.sample_rate = AUDIO_RATE
    codec.time_base = AUDIO_TIME_BASE
    codec.options = {"application": "voip"}
    count = max(1, round(seconds * AUDIO_RATE / AUDIO_SAMPLES))
    # A whole number of periods per loop so that the loop seam is inaudible.
    cycles = max(1, round(frequency_hz * count * AUDIO_SAMPLES / AUDIO_RATE))
    n = np.arange(count * AUDIO_SAMPLES)
    tone = np.round(0.25 * 32767 * np.sin(2 * np.pi * cycles * n / (count * AUDIO_SAMPLES))).astype(np.int16)
    packets: list[bytes] = []
    for i in range(count + 2):  # +2: flush the encoder's look-ahead
        chunk = tone[(i % count) * AUDIO_SAMPLES : (i % count + 1) * AUDIO_SAMPLES]
        frame = av.AudioFrame.from_ndarray(np.repeat(chunk, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = AUDIO_RATE
        frame.pts = i * AUDIO_SAMPLES
        frame.time_base = AUDIO_TIME_BASE
        packets += [bytes(p) for p in codec.encode(frame)]
    return packets[:count] or packets


# --------------------------------------------------------------------------- replay tracks


def latency_seconds(index: int, received_wall: float, spec: VideoSpec) -> float:
    """Latency of a frame carrying loop ``index`` decoded at ``received_wall`` (time.time())."""
    slots = received_wall * spec.fps
    return ((slots - index) % spec.loop_frames) / spec.fps


class ReplayVideoTrack(MediaStreamTrack):
    """Sends a :class:`VideoLoop` as ``av.Packet`` objects, aligned to the wall clock.

    ``keyframe_requested`` is polled before every frame (wired to the sender's PLI flag); a start,
    a request or a skipped slot switches to intra frames until the chain's next keyframe.
    ``offset`` (seconds) shifts this track's slots after the wall-clock grid, so that senders on one
    machine need not all send at the same instant (:func:`latency_seconds` then reads late by it).
    """

    kind = "video"

    def __init__(self, loop: VideoLoop, max_lag_slots: int = 2, offset: float = 0.0) -> None:
        super().__init__()
        self.loop = loop
        self.offset = offset
        self.spec = loop.spec
        self.keyframe_requested: Callable[[], bool] = lambda: False
        self.max_lag_slots = max_lag_slots
        self.frames_sent = 0
        self.keyframes_sent = 0
        self.intra_sent = 0  #: frames sent from the intra loop (after a start, request or skip)
        self.bytes_sent = 0
        self.skipped_slots = 0
        self.lateness_total = 0.0  #: seconds sent after the due time, summed
        self._slot: int | None = None
        self._first_slot = 0
        self._need_key = True

    @property
    def sending_intra(self) -> bool:
        """True while the track sends intra frames (until the chain's next keyframe)."""
        return self._need_key

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        fps = self.spec.fps
        now = time.time() - self.offset
        current = int(now * fps)
        if self._slot is None:
            slot = self._first_slot = current + 1
        else:
            slot = self._slot + 1
            if current - slot > self.max_lag_slots:
                # Far behind (overloaded generator): drop the missed slots, resync with a keyframe.
                self.skipped_slots += current - slot
                slot = current + 1
                self._need_key = True
        due = slot / fps
        if due > now:
            await asyncio.sleep(due - now)
            if self.readyState != "live":
                raise MediaStreamError
        self.lateness_total += max(0.0, time.time() - self.offset - due)
        self._slot = slot
        index = slot % self.spec.loop_frames
        if self.keyframe_requested():
            self._need_key = True
        if index % self.spec.gop == 0:
            self._need_key = False  # the chain's own keyframe
        if self._need_key:
            data = self.loop.intra[index]
            self.keyframes_sent += 1
            self.intra_sent += 1
        else:
            data = self.loop.chain[index]
            if index % self.spec.gop == 0:
                self.keyframes_sent += 1
        packet = av.Packet(data)
        packet.pts = round((slot - self._first_slot) * 90000 / fps)
        packet.time_base = VIDEO_TIME_BASE
        self.frames_sent += 1
        self.bytes_sent += len(data)
        return packet


class ReplayAudioTrack(MediaStreamTrack):
    """Sends a loop of Opus packets every 20 ms (monotonic pacing, skips rather than bursts)."""

    kind = "audio"

    def __init__(self, packets: list[bytes]) -> None:
        super().__init__()
        self.packets = packets
        self._start: float | None = None
        self._slot = -1

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        period = AUDIO_SAMPLES / AUDIO_RATE
        now = time.monotonic()
        if self._start is None:
            self._start = now
        self._slot += 1
        due = self._start + self._slot * period
        if now - due > 3 * period:
            self._slot = int((now - self._start) / period)
        elif due > now:
            await asyncio.sleep(due - now)
            if self.readyState != "live":
                raise MediaStreamError
        packet = av.Packet(self.packets[self._slot % len(self.packets)])
        packet.pts = self._slot * AUDIO_SAMPLES
        packet.time_base = AUDIO_TIME_BASE
        return packet
