"""A source forwarded packet by packet: each inbound RTP packet goes straight to the watcher's stream.

:class:`PacketFeed` takes a publisher's decrypted RTP off its transport before aiortc parses it
(see :mod:`sfu.media.aiortc_hooks.packets`): RTX unwrapped, upstream losses NACKed (then a keyframe
requested), Receiver Reports sent, and each packet handed to the watcher's outbound stream (a
:class:`PacketSink`, :mod:`sfu.media.packet_tracks`). When the two legs have no codec in common, the
feed lets aiortc have the packets and the frame path transcodes, as in ``passthrough`` mode.

Moderation gets pictures without decoding the stream: :meth:`PacketFeed.picture` asks for a
keyframe, assembles that one keyframe from packets and decodes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import av
from aiortc import MediaStreamTrack, RTCDtlsTransport, RTCRtpCodecParameters, RTCRtpReceiver

from .aiortc_hooks import packets as hooks
from .aiortc_hooks import server as server_hooks
from .encoded import EncodedFrame
from .encoded_feed import PICTURE_FRESH, EncodedFeed
from .rtp import rtcp
from .rtp.header import one_byte_extension, parse
from .rtp.inbound import Arrival, InboundStream, KeyframeCollector
from .rtp.legs import AUDIO_LEVEL_URI, Codec, InboundLeg
from .rtp.stream import OutboundStream
from .source import SourceId

log = logging.getLogger(__name__)

#: Where a feed's packets go: the watcher's stream, and inbound payload type -> outbound payload type.
PacketRoute = tuple[OutboundStream, dict[int, int]]

_DECODERS = {"video/vp8": "vp8", "video/h264": "h264"}


@runtime_checkable
class PacketSink(Protocol):
    """A sink that takes a feed's RTP packets directly (a packet forwarding outbound track)."""

    def packet_route(self, leg: InboundLeg | None) -> PacketRoute | None:
        """Where packets of a publisher's ``leg`` go; ``None``: not as packets (no stream yet, or
        no codec in common)."""
        ...

    def reroute(self) -> None:
        """The connected source's negotiation finished: decide again between packets and pictures."""
        ...


class PacketFeed(EncodedFeed):
    """One participant's inbound track, forwarded packet by packet (frames only on codec mismatch)."""

    def __init__(
        self,
        source_id: SourceId,
        track: MediaStreamTrack,
        receiver: RTCRtpReceiver,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(source_id, track, receiver, clock)
        #: What the publisher sends, as watchers see it: the negotiated leg until the first packet,
        #: then narrowed to the codec in use (and its RTX), so that a watcher who negotiated another
        #: one gets pictures transcoded rather than packets it cannot take.
        self.leg: InboundLeg | None = None
        self._negotiated: InboundLeg | None = None
        self.inbound: InboundStream | None = None
        self._tap: hooks.InboundTap | None = None
        self._output: hooks.RtpOutput | None = None
        self._route: PacketRoute | None = None
        self._level_id = 0
        self._sr: tuple[int, float] | None = None  #: last Sender Report: (middle NTP bits, when)
        self._seen: Codec | None = None  #: the codec of the last packet forwarded
        self._collector: KeyframeCollector | None = None
        self._pictures: list[asyncio.Future[Any]] = []
        #: False: aiortc's frame path gets the packets (the watcher needs them transcoded).
        self.active = True
        #: Also called with each packet as forwarded (RTX unwrapped) and ``now``: watchers in other
        #: processes (the media pipe's exports).
        self.taps: list[Callable[[Arrival, float], None]] = []
        hooks.on_receiver_parameters(receiver, self._started)
        hooks.on_sender_report(receiver, self.on_sender_report)

    @property
    def codec(self) -> RTCRtpCodecParameters | None:
        """The codec of the last packet (or frame, when transcoding) received."""
        seen = self._seen
        if seen is not None and self.active:
            return server_hooks.receiver_codec(self._receiver, seen.payload_type)
        return super().codec

    # -- set-up and routing ----------------------------------------------------------------------
    def _started(self, leg: InboundLeg, transport: RTCDtlsTransport) -> None:
        leg.kind = self.kind
        self.leg = self._negotiated = leg
        self.inbound = InboundStream(leg, nack=self.kind == "video")
        self._level_id = leg.extensions.get(AUDIO_LEVEL_URI, 0) if self.kind == "audio" else 0
        self._output = hooks.RtpOutput(transport)
        self._tap = hooks.InboundTap.of(transport)
        self._tap.claim(leg, self)
        self.reroute()

    def reroute(self) -> None:
        """Decide again whether packets go to the watcher as packets or to aiortc's frame path."""
        sink = self.sink
        packets = isinstance(sink, PacketSink)
        self._route = sink.packet_route(self.leg) if packets else None  # type: ignore[union-attr]
        # No watcher: keep the packets (cheap; pictures come from them). A watcher on another codec:
        # aiortc's frame path decodes for transcoding.
        self.active = sink is None or self._route is not None
        if packets:
            sink.reroute()  # type: ignore[union-attr]

    def on_attach(self) -> None:
        self.reroute()
        super().on_attach()

    def on_detach(self) -> None:
        super().on_detach()
        self._route = None
        self.active = True

    def remote_watcher(self, attached: bool) -> None:
        """A watcher in another process started (``True``) or stopped following this feed: as
        :meth:`on_attach` / :meth:`on_detach` for the bitrate cap and the first keyframe."""
        now = self._clock()
        self.cap.clear(now)
        if attached:
            self._publishing.rate(self.octets, now)
            self.request_keyframe()

    # -- per packet ------------------------------------------------------------------------------
    def on_rtp(self, packet: bytes, now: float) -> None:
        self.octets += len(packet)
        inbound = self.inbound
        view = parse(packet)
        if view is None or inbound is None:
            return
        arrival = inbound.accept(view, now)
        if arrival is None:
            return
        view = arrival.view
        if arrival.codec is not self._seen:
            self._seen = arrival.codec
            self._sending(arrival.codec)
        if self.assembler.ssrc is None:
            self.assembler.ssrc = view.ssrc  # the keyframe and bitrate requests' target
        keyframes = self.keyframes
        if arrival.keyframe_start:
            keyframes.keyframe_arrived(now)
        if keyframes.pending:
            keyframes.media_seen(now)
        self._media_arrived(now)  # the camera rule: this publisher's video reaches the server
        route = self._route
        if route is not None:
            payload_type = route[1].get(view.payload_type)
            if payload_type is not None:
                level = one_byte_extension(view, self._level_id) if self._level_id else None
                route[0].forward(self.id, view, payload_type, now, level, arrival.vp8)
        if self.taps:
            for tap in self.taps:
                tap(arrival, now)
        if self._collector is not None:
            self._collect(arrival)
        if inbound.loss.missing:
            self._repair(now)
        if inbound.report_due(now):
            self._send_receiver_report(now)

    def _sending(self, codec: Codec) -> None:
        """The publisher sends ``codec`` (first packet, or a change): watchers decide again."""
        negotiated = self._negotiated
        if negotiated is None:
            return
        sending = sending_leg(negotiated, codec.payload_type)
        if sending != self.leg:
            self.leg = sending
            self.reroute()

    def _repair(self, now: float) -> None:
        inbound = self.inbound
        assert inbound is not None
        report = inbound.poll(now)
        rtcp_ssrc = hooks.receiver_rtcp_ssrc(self._receiver)
        if report.nack and rtcp_ssrc is not None and inbound.media_ssrc is not None and self._output:
            self._output.send_rtcp(rtcp.nack(rtcp_ssrc, inbound.media_ssrc, report.nack))
        if report.keyframe and self.kind == "video" and (self.sink is not None or self.taps or self._pictures):
            self.keyframes.request(now)

    def _send_receiver_report(self, now: float) -> None:
        inbound = self.inbound
        rtcp_ssrc = hooks.receiver_rtcp_ssrc(self._receiver)
        if inbound is None or inbound.media_ssrc is None or rtcp_ssrc is None or self._output is None:
            return
        fraction, lost, highest = inbound.loss.receiver_report()
        lsr = dlsr = 0
        if self._sr is not None:
            lsr = self._sr[0]
            dlsr = int((now - self._sr[1]) * 65536) & 0xFFFFFFFF
        self._output.send_rtcp(
            rtcp.receiver_report(rtcp_ssrc, inbound.media_ssrc, fraction, lost, highest, 0, lsr, dlsr)
        )

    def on_sender_report(self, ssrc: int, ntp: int, now: float) -> None:
        if self.inbound is not None and ssrc == self.inbound.media_ssrc:
            self._sr = ((ntp >> 16) & 0xFFFFFFFF, now)

    # -- pictures for moderation -----------------------------------------------------------------
    async def picture(self, timeout: float) -> av.VideoFrame | None:
        """The publisher's current picture: a keyframe is requested, assembled from packets and
        decoded (nothing is decoded otherwise; when transcoding anyway, the latest decoded picture).
        ``None`` for audio, if none came within ``timeout`` s, or if the feed closed."""
        if self.kind != "video":
            return None
        if self._decoded is not None and self._clock() - self._decoded[1] <= PICTURE_FRESH:
            return self._decoded[0]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pictures.append(future)
        if self._collector is None:
            self._collector = KeyframeCollector()
        self.request_keyframe()
        try:
            result = await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            if future in self._pictures:
                self._pictures.remove(future)
            if not self._pictures:
                self._collector = None
        if result is None or isinstance(result, av.VideoFrame):
            return result
        mime, data = result
        return await loop.run_in_executor(None, decode_keyframe, mime, data)

    def _collect(self, arrival: Arrival) -> None:
        assert self._collector is not None
        data = self._collector.add(arrival)
        if data is None:
            return
        for future in self._pictures:
            if not future.done():
                future.set_result((self._collector.mime, data))

    def _on_frame(self, frame: EncodedFrame) -> None:
        if self.active:
            return  # a few packets queued before the tap was in place: the packet path has them now
        super()._on_frame(frame)

    def _on_decoded(self, frame: av.frame.Frame) -> None:
        super()._on_decoded(frame)
        for future in self._pictures:  # transcoding anyway: a decoded picture is at hand
            if not future.done() and isinstance(frame, av.VideoFrame):
                future.set_result(frame)

    async def close(self) -> None:
        if self._tap is not None:
            self._tap.release(self)
        pictures, self._pictures = self._pictures, []
        for future in pictures:  # nobody waits for a picture that will never come
            if not future.done():
                future.set_result(None)
        await super().close()


def sending_leg(leg: InboundLeg, payload_type: int) -> InboundLeg:
    """``leg`` with only the codec of ``payload_type`` and its RTX."""
    return InboundLeg(
        kind=leg.kind,
        codecs={pt: c for pt, c in leg.codecs.items() if pt == payload_type or c.apt == payload_type},
        extensions=leg.extensions,
        rtx_ssrcs=leg.rtx_ssrcs,
    )


def decode_keyframe(mime: str, data: bytes) -> av.VideoFrame | None:
    """Decode one keyframe's bitstream (VP8 frame or H.264 Annex B) into a picture."""
    name = _DECODERS.get(mime)
    if name is None or not data:
        return None
    context: Any = av.CodecContext.create(name, "r")
    try:
        frames = context.decode(av.Packet(data))
        frames += context.decode(None)
    except av.error.FFmpegError:
        return None
    return frames[0] if frames else None
