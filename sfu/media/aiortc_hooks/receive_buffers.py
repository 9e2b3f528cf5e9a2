"""Receiver jitter buffers for test and load clients (testing hooks, see :mod:`.testing`): one that
restarts at the next keyframe after a loss, as a browser does, and one that counts what arrives
without decoding it. They replace aiortc's ``RTCRtpReceiver.__jitter_buffer`` (checked by
:func:`.testing.problems`)."""

from __future__ import annotations

from collections.abc import Callable

from aiortc import RTCRtpReceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

from ..rtp import h264, vp8


class RestartableVideoBuffer(JitterBuffer):
    """aiortc's video jitter buffer, made to recover from a loss as a browser does.

    aiortc's own waits for a missing packet until 512 packets later. This one starts again at a
    keyframe that arrives while it waits on a missing packet (a keyframe needs nothing before it),
    and can be told to give up what it waits for (:attr:`restarting`): nothing is decoded then
    until the next keyframe, from which it starts again."""

    def __init__(self, keyframe_start: Callable[[RtpPacket], bool]) -> None:
        super().__init__(capacity=512, is_video=True)
        self._keyframe_start = keyframe_start
        self.restarting = False
        self.restarts = 0

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        sequence = packet.sequence_number
        if self._ahead(sequence) and self._keyframe_start(packet) and (self.restarting or self._hole_before(sequence)):
            if self._origin is not None:
                self.remove(min((sequence - self._origin) & 0xFFFF, self.capacity))
            self._origin = sequence
            self.restarting = False
            self.restarts += 1
        pli, frame = super().add(packet)
        return (pli, None) if self.restarting else (pli, frame)

    def _ahead(self, sequence: int) -> bool:
        """Whether ``sequence`` comes after the oldest packet waiting (or nothing waits yet)."""
        origin = self._origin
        return origin is None or 0 < (sequence - origin) & 0xFFFF < 0x8000

    def _hole_before(self, sequence: int) -> bool:
        """Whether a packet between the oldest one waiting and ``sequence`` is missing."""
        origin = self._origin
        if origin is None:
            return False
        span = (sequence - origin) & 0xFFFF
        return span >= self.capacity or any(self._packets[(origin + i) % self.capacity] is None for i in range(span))


class CountingBuffer(JitterBuffer):
    """Stands in for a receiver's jitter buffer: counts what arrives and hands nothing to the decoder.

    ``packets``: RTP packets (retransmissions included, unwrapped from RTX by aiortc); ``frames``:
    video pictures whose last packet (marker bit) arrived, each counted once, or audio packets;
    ``keyframes``: VP8 keyframe starts; ``first_frame_at``: ``now()`` at the first frame."""

    def __init__(self, is_video: bool, now: Callable[[], float]) -> None:
        super().__init__(capacity=16, is_video=is_video)
        self.video = is_video
        self.now = now
        self.packets = 0
        self.frames = 0
        self.keyframes = 0
        self.first_frame_at: float | None = None
        self._last_marked: int | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        self.packets += 1
        if self.video:
            if vp8.is_keyframe_start(packet.payload):
                self.keyframes += 1
            if not packet.marker:
                return False, None
            last, timestamp = self._last_marked, packet.timestamp
            if last is not None and not 0 < (timestamp - last) & 0xFFFFFFFF < 0x80000000:
                return False, None  # a retransmission, or a late packet of a picture already counted
            self._last_marked = timestamp
        self.frames += 1
        if self.first_frame_at is None:
            self.first_frame_at = self.now()
        return False, None


def count_received(receiver: RTCRtpReceiver, now: Callable[[], float]) -> CountingBuffer:
    """Make ``receiver`` count packets and frames instead of decoding them (call from
    ``pc.on("track")``, before media arrives); aiortc's NACKs, receiver reports and REMB go on."""
    video = receiver.track is not None and receiver.track.kind == "video"
    buffer = CountingBuffer(video, now)
    receiver._RTCRtpReceiver__jitter_buffer = buffer  # type: ignore[attr-defined]
    return buffer


def restartable_video(receiver: RTCRtpReceiver) -> RestartableVideoBuffer:
    """Give a video receiver a jitter buffer that :func:`restart_at_keyframe` can reset (call from
    ``pc.on("track")``, before media arrives)."""

    def keyframe_start(packet: RtpPacket) -> bool:
        codec = receiver._RTCRtpReceiver__codecs.get(packet.payload_type)  # type: ignore[attr-defined]
        mime = codec.mimeType.lower() if codec is not None else ""
        if mime == "video/vp8":
            return vp8.is_keyframe_start(packet.payload)
        return mime == "video/h264" and h264.is_keyframe_start(packet.payload)

    buffer = RestartableVideoBuffer(keyframe_start)
    receiver._RTCRtpReceiver__jitter_buffer = buffer  # type: ignore[attr-defined]
    return buffer


def restart_at_keyframe(receiver: RTCRtpReceiver) -> bool:
    """Make the receiver drop what it waits for and decode again from the next keyframe, as a
    browser does after a loss it cannot repair; False if the receiver was not made restartable."""
    buffer = getattr(receiver, "_RTCRtpReceiver__jitter_buffer", None)
    if not isinstance(buffer, RestartableVideoBuffer):
        return False
    buffer.restarting = True
    return True


def waiting_for_keyframe(receiver: RTCRtpReceiver) -> bool:
    """Whether the receiver restarts at the next keyframe and has not seen one yet."""
    buffer = getattr(receiver, "_RTCRtpReceiver__jitter_buffer", None)
    return isinstance(buffer, RestartableVideoBuffer) and buffer.restarting
