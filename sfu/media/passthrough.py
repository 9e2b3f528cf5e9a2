"""Encoded forwarding: send a partner's encoded frames to the watcher without decoding them.

The sources are :class:`~sfu.media.encoded_feed.EncodedFeed` objects. When the watcher's leg
negotiated the same codec, the frames go out as ``av.Packet`` objects, which aiortc's sender
packetizes without encoding (it rewrites SSRC, sequence numbers and timestamps, so they stay
continuous across partner switches). When the codecs differ, the source decodes on demand and the
outbound track hands pictures to aiortc's encoder: the same outbound track carries either, per item.

Keyframes: a watcher gets nothing from a new partner until a keyframe (requested on every switch and
re-requested every ~500 ms while waiting); the watcher's own PLI/FIR is relayed to the partner; an
inbound loss withholds frames until the next keyframe. Bandwidth: the watcher's REMB is relayed to
the partner as a cap. Queues are bounded: an overflowing encoded queue is dropped whole and restarts
at a keyframe.
"""

from __future__ import annotations

import logging
from typing import Any

import av
from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpCodecParameters,
    RTCRtpSender,
    RTCRtpTransceiver,
)

from .aiortc_hooks import server as hooks
from .encoded import EncodedFrame, mime, same_codec
from .encoded_feed import EncodedFeed
from .feed import Feed
from .outbound import (
    VIDEO_CLOCK,
    VIDEO_TIME_BASE,
    OutboundAudioTrack,
    OutboundTrack,
    OutboundVideoTrack,
)
from .source import Source, SourceId
from .strategy import Forwarding

log = logging.getLogger(__name__)

#: Codec order put first in every answer, so that participants who allow it share one codec.
PREFERRED_CODECS = {"video": ("video/VP8", "video/H264"), "audio": ("audio/opus",)}
#: Seconds between keyframe re-requests while a watcher waits for one.
KEYFRAME_RETRY = 0.5
#: Smallest pts step between two frames from different origins (1/60 s at 90 kHz).
MIN_PTS_STEP = VIDEO_CLOCK // 60
#: Encoded frames kept while hidden (from the latest keyframe on); beyond, wait for the next keyframe.
HOLD_FRAMES = 90


class _Mode:
    """Which way an outbound track is currently fed, logged when it changes."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.mode: str | None = None  #: "passthrough", "transcode" or None (no partner)
        self.codec: RTCRtpCodecParameters | None = None  #: what this leg sends
        self._checked: tuple[RTCRtpCodecParameters, RTCRtpCodecParameters, bool] | None = None

    def accepts(self, codec: RTCRtpCodecParameters) -> bool:
        if self.codec is None:
            return True
        # Asked for every frame, nearly always with the same two codec objects: remember the answer.
        checked = self._checked
        if checked is None or checked[0] is not codec or checked[1] is not self.codec:
            checked = self._checked = (codec, self.codec, same_codec(codec, self.codec))
        return checked[2]

    def set(self, mode: str | None, source: RTCRtpCodecParameters | None = None) -> None:
        if mode != self.mode:
            self.mode = mode
            if mode is not None:
                via = mime(source) if source is not None else "?"
                to = mime(self.codec) if self.codec is not None else "?"
                log.info("%s forwarding %s: %s -> %s (%x)", self.kind, mode, via, to, id(self) & 0xFFFFFF)


class _ModeTracking:
    """What both passthrough tracks share: the negotiated codec and the current mode."""

    state: _Mode
    _source: Source | None

    @property
    def mode(self) -> str | None:
        return self.state.mode if self._source is not None else None

    def set_codec(self, codec: RTCRtpCodecParameters) -> None:
        self.state.codec = codec

    def accepts(self, codec: RTCRtpCodecParameters) -> bool:
        return self.state.accepts(codec)


class PassthroughVideoTrack(_ModeTracking, OutboundVideoTrack):
    """Sends encoded frames as they came (same codec) or pictures to encode (codec mismatch)."""

    capacity = 6
    # Forwarded frames follow the partner's clock, which may run ahead of ours, and frames a few
    # ticks apart get merged or dropped by receivers: keep at least this far apart.
    min_pts_step = MIN_PTS_STEP

    def __init__(self) -> None:
        super().__init__()
        self.state = _Mode("video")
        self._waiting_keyframe = True
        self._src_ts: int | None = None
        self.frames_skipped = 0

    def _switched(self) -> None:
        super()._switched()
        self._waiting_keyframe = True
        self._src_ts = None

    def set_hidden(self, hidden: bool) -> None:
        if hidden == self._hidden:
            return
        self._waiting_keyframe = True  # shown again: from a keyframe (held, or asked for now)
        super().set_hidden(hidden)
        if not hidden and not self._items:
            self._ask_keyframe()

    def _hold(self, item: Any) -> None:
        """Encoded frames from the latest keyframe on (a frame is useless without those before it)."""
        if not isinstance(item, EncodedFrame):
            super()._hold(item)
            return
        if item.keyframe:
            self._held.clear()
        elif not self._held or not isinstance(self._held[0], EncodedFrame):
            return  # nothing to decode it from
        if len(self._held) >= HOLD_FRAMES:
            self._held.clear()  # too long: resume at the next keyframe instead
            return
        self._held.append(item)

    def _release(self) -> list[Any]:
        held = list(self._held)
        self._held.clear()
        if held and isinstance(held[-1], EncodedFrame):
            last_key = max(i for i, f in enumerate(held) if f.keyframe)  # the first one is a keyframe
            return held[last_key:]
        return held[-1:]

    def _ask_keyframe(self) -> None:
        if self._source is not None:
            self._source.request_keyframe()

    def on_keyframe_request(self) -> None:
        """The watcher reported picture loss (PLI/FIR): ask its partner when forwarding encoded."""
        if self.state.mode == "passthrough":
            self._ask_keyframe()

    def on_remb(self, bitrate: int) -> None:
        """The watcher's bandwidth estimate: cap its partner's publishing rate."""
        if self.state.mode == "passthrough" and self._source is not None:
            self._source.set_bitrate_cap(bitrate)

    def deliver(self, source: SourceId, item: Any) -> None:
        if self._hidden or not isinstance(item, EncodedFrame):
            super().deliver(source, item)
            return
        if not self._connected_to(source):
            return
        self.items_in += 1
        if len(self._items) >= self.capacity:
            # Dropping one encoded frame breaks every frame after it: drop all, restart at a keyframe.
            self.items_dropped += len(self._items)
            self._items.clear()
            self._waiting_keyframe = True
            self._ask_keyframe()
        self._items.append(item)
        self._wake.set()

    def _encoded_pts(self, timestamp: int) -> int:
        if self._src_ts is None:
            pts = self._pts()
        else:
            delta = (timestamp - self._src_ts) & 0xFFFFFFFF
            if delta >= 1 << 31 or delta > 10 * VIDEO_CLOCK:
                delta = 1  # reordered or absurd jump: keep pts strictly increasing
            pts = self._last_pts + max(1, delta)
        self._src_ts = timestamp
        self._last_pts = pts
        return pts

    async def recv(self) -> Any:
        while True:
            if not self._showing():
                timeout: float | None = self._placeholder_timeout()
            elif self._waiting_keyframe:
                timeout = KEYFRAME_RETRY
            else:
                timeout = None
            item = await self._next_item(timeout)
            if item is None:
                if self._showing():
                    if self._waiting_keyframe:
                        self._ask_keyframe()
                    continue
                if self._source is None:
                    self.state.set(None)
                self._src_ts = None
                return self._stamp(self.placeholder_frame())
            if isinstance(item, EncodedFrame):
                if self._waiting_keyframe and not item.keyframe:
                    self.frames_skipped += 1
                    self._ask_keyframe()
                    continue
                self._waiting_keyframe = False
                packet = av.Packet(item.data)
                packet.pts = self._encoded_pts(item.timestamp)
                packet.time_base = VIDEO_TIME_BASE
                self.state.set("passthrough", item.codec)
                return packet
            self._waiting_keyframe = False  # decoded pictures: the encoder makes its own keyframe
            self._src_ts = None
            self.state.set("transcode", self._source.codec if self._source is not None else None)
            return self._stamp(item)


class PassthroughAudioTrack(_ModeTracking, OutboundAudioTrack):
    """Sends Opus packets as they came, with continuous timestamps; decoded audio on mismatch."""

    def __init__(self) -> None:
        super().__init__()
        self.state = _Mode("audio")
        self._src_ts: int | None = None

    def on_keyframe_request(self) -> None:
        pass

    def on_remb(self, bitrate: int) -> None:
        pass

    def _switched(self) -> None:
        self._src_ts = None

    async def recv(self) -> Any:
        item = None
        while item is None:
            item = await self._next_item(None)
        if not isinstance(item, EncodedFrame):
            self._src_ts = None
            self.state.set("transcode", self._source.codec if self._source is not None else None)
            return self._stamp(item)
        rate = item.codec.clockRate
        wall = int(self._elapsed() * rate)
        if self._src_ts is None or self._last_pts is None:
            pts = wall if self._last_pts is None else max(wall, self._last_pts + 1)
        else:
            delta = (item.timestamp - self._src_ts) & 0xFFFFFFFF
            if delta == 0 or delta > rate:
                pts = max(wall, self._last_pts + 1)  # reordered, or a long silence upstream
            else:
                pts = self._last_pts + delta
        self._src_ts = item.timestamp
        self._last_pts = pts
        self._next_pts = None
        packet = av.Packet(item.data)
        packet.pts = pts
        packet.time_base = self._time_base_for(rate)
        self.state.set("passthrough", item.codec)
        return packet


class Passthrough(Forwarding):
    """Forward encoded media when both legs use the same codec; decode and re-encode otherwise."""

    def __init__(self, name: str = "auto") -> None:
        self.name = name

    def prepare(self, pc: RTCPeerConnection) -> None:
        for transceiver in pc.getTransceivers():
            order = PREFERRED_CODECS.get(transceiver.kind)
            if order:
                hooks.prefer_codecs(transceiver, order)

    def source(
        self, source_id: SourceId, track: MediaStreamTrack, transceiver: RTCRtpTransceiver
    ) -> Feed:
        return EncodedFeed(source_id, track, transceiver.receiver)

    def outbound(self, kind: str) -> OutboundTrack:
        return PassthroughVideoTrack() if kind == "video" else PassthroughAudioTrack()

    def bind(self, track: OutboundTrack, sender: RTCRtpSender) -> None:
        assert isinstance(track, (PassthroughVideoTrack, PassthroughAudioTrack))
        hooks.on_sender_codec(sender, track.set_codec)
        hooks.on_sender_feedback(
            sender, keyframe_request=track.on_keyframe_request, bitrate=track.on_remb
        )
        if track.kind == "video":
            # Pictures to encode (placeholder, codec mismatch) start with a keyframe after a switch.
            track.on_switch = lambda: hooks.force_keyframe(sender)
