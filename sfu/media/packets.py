"""Packet forwarding: each inbound RTP packet of a participant is rewritten and sent straight to the
partner's outbound stream, with no frame reassembly, re-packetization or task hop per frame.

:class:`PacketFeed` takes a publisher's decrypted RTP off its transport before aiortc parses it
(see :mod:`sfu.media.aiortc_hooks_packets`): RTX unwrapped, upstream losses NACKed (then a keyframe
requested), Receiver Reports sent, and each packet handed to the watcher's stream
(:mod:`sfu.media.packet_tracks`). When the two legs have no codec in common, the feed lets aiortc
have the packets and the frame path transcodes, as in ``passthrough`` mode.

Moderation gets pictures without decoding the stream: :meth:`PacketFeed.picture` asks for a
keyframe, assembles that one keyframe from packets and decodes it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender

from . import aiortc_hooks_packets as hooks
from . import aiortc_private
from .feed import Feed
from .outbound import OutboundTrack
from .packet_tracks import PacketAudioTrack, PacketVideoTrack
from .passthrough import EncodedFeed, Passthrough
from .rtp import rtcp
from .rtp.header import one_byte_extension, parse
from .rtp.inbound import InboundStream, KeyframeCollector
from .rtp.legs import AUDIO_LEVEL_URI, InboundLeg

log = logging.getLogger(__name__)

_DECODERS = {"video/vp8": "vp8", "video/h264": "h264"}


class PacketFeed(EncodedFeed, hooks.PacketSink):
    """One participant's inbound track, forwarded packet by packet (frames only on codec mismatch)."""

    def __init__(self, track: MediaStreamTrack, receiver: RTCRtpReceiver) -> None:
        super().__init__(track, receiver)
        self._receiver = receiver
        self.leg: InboundLeg | None = None
        self.inbound: InboundStream | None = None
        self._tap: hooks.InboundTap | None = None
        self._output: hooks.RtpOutput | None = None
        self._route: tuple[Any, dict[int, int]] | None = None
        self._level_id = 0
        self._sr: tuple[int, float] | None = None  #: last Sender Report: (middle NTP bits, when)
        self._collector: KeyframeCollector | None = None
        self._pictures: list[asyncio.Future] = []
        self.active = True
        hooks.on_receiver_parameters(receiver, self._started)
        hooks.on_sender_report(receiver, self._on_sender_report)

    # -- set-up and routing ----------------------------------------------------------------------
    def _started(self, leg: InboundLeg, transport: Any) -> None:
        leg.kind = self.kind
        self.leg = leg
        self.inbound = InboundStream(leg, nack=self.kind == "video")
        self._level_id = leg.extensions.get(AUDIO_LEVEL_URI, 0) if self.kind == "audio" else 0
        self._output = hooks.RtpOutput(transport)
        self._tap = hooks.InboundTap.of(transport)
        self._tap.claim(leg, self)
        self.reroute()

    def reroute(self) -> None:
        """Decide again whether packets go to the watcher as packets or to aiortc's frame path."""
        sink = self.subscriber
        route = getattr(sink, "packet_route", None)
        self._route = route(self) if route is not None else None
        # No watcher: keep the packets (cheap; pictures come from them). A watcher on another codec:
        # aiortc's frame path decodes for transcoding.
        self.active = sink is None or self._route is not None
        if sink is not None and hasattr(sink, "reroute"):
            sink.reroute()

    def on_subscribe(self) -> None:
        self.reroute()
        super().on_subscribe()

    def unsubscribe(self, sink: OutboundTrack) -> None:
        super().unsubscribe(sink)
        if self.subscriber is None:
            self._route = None
            self.active = True

    # -- per packet ------------------------------------------------------------------------------
    def on_rtp(self, packet: bytes, now: float) -> None:
        inbound = self.inbound
        view = parse(packet)
        if view is None or inbound is None:
            return
        arrival = inbound.accept(view, now)
        if arrival is None:
            return
        view = arrival.view
        if self.assembler.ssrc is None:
            self.assembler.ssrc = view.ssrc  # the keyframe and bitrate requests' target
        keyframes = self.keyframes
        if arrival.keyframe_start:
            keyframes.keyframe_arrived()
        keyframes.media_seen()
        route = self._route
        if route is not None:
            payload_type = route[1].get(view.payload_type)
            if payload_type is not None:
                level = one_byte_extension(view, self._level_id) if self._level_id else None
                route[0].forward(self, view, payload_type, now, level)
        if self._collector is not None:
            self._collect(arrival)
        if inbound.loss.missing:
            self._repair(now)
        if inbound.report_due(now):
            self._send_receiver_report(now)

    def _repair(self, now: float) -> None:
        inbound = self.inbound
        assert inbound is not None
        report = inbound.poll(now)
        rtcp_ssrc = hooks.receiver_rtcp_ssrc(self._receiver)
        if report.nack and rtcp_ssrc is not None and inbound.media_ssrc is not None and self._output:
            self._output.send_rtcp(rtcp.nack(rtcp_ssrc, inbound.media_ssrc, report.nack))
        if report.keyframe and (self.subscriber is not None or self._pictures):
            self.request_keyframe()

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
        self._output.send_rtcp(rtcp.receiver_report(rtcp_ssrc, inbound.media_ssrc, fraction, lost, highest, 0, lsr, dlsr))

    def _on_sender_report(self, ssrc: int, ntp: int, now: float) -> None:
        if self.inbound is not None and ssrc == self.inbound.media_ssrc:
            self._sr = ((ntp >> 16) & 0xFFFFFFFF, now)

    # -- pictures for moderation -----------------------------------------------------------------
    async def picture(self, timeout: float) -> av.VideoFrame | None:
        """One current picture of this participant: a keyframe is requested, assembled from packets
        and decoded (nothing is decoded otherwise). ``None`` if none came within ``timeout``."""
        if self.kind != "video":
            return None
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pictures.append(future)
        if self._collector is None:
            self._collector = KeyframeCollector()
        self.request_keyframe()
        try:
            result = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
        finally:
            if future in self._pictures:
                self._pictures.remove(future)
            if not self._pictures:
                self._collector = None
        if isinstance(result, av.VideoFrame):
            return result
        mime, data = result
        return await asyncio.get_running_loop().run_in_executor(None, decode_keyframe, mime, data)

    def _collect(self, arrival: Any) -> None:
        assert self._collector is not None
        data = self._collector.add(arrival)
        if data is None:
            return
        for future in self._pictures:
            if not future.done():
                future.set_result((self._collector.mime, data))

    def _on_frame(self, frame: Any) -> None:
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
        for future in self._pictures:
            future.cancel()
        await super().close()


def decode_keyframe(mime: str, data: bytes) -> av.VideoFrame | None:
    """Decode one keyframe's bitstream (VP8 frame or H.264 Annex B) into a picture."""
    name = _DECODERS.get(mime)
    if name is None or not data:
        return None
    context: Any = av.CodecContext.create(name, "r")
    try:
        frames = context.decode(av.Packet(data))
        frames += context.decode(None)
    except av.error.FFmpegError:  # type: ignore[attr-defined]
        return None
    return frames[0] if frames else None


class PacketForwarding(Passthrough):
    """Forward RTP packets where both legs share a codec; decode and re-encode the other directions."""

    def __init__(self, name: str = "packet") -> None:
        super().__init__(name)

    def feed(self, track: MediaStreamTrack, receiver: RTCRtpReceiver) -> Feed:
        return PacketFeed(track, receiver)

    def outbound(self, kind: str) -> OutboundTrack:
        return PacketVideoTrack() if kind == "video" else PacketAudioTrack()

    def bind(self, track: OutboundTrack, sender: RTCRtpSender) -> None:
        assert isinstance(track, (PacketVideoTrack, PacketAudioTrack))
        aiortc_private.on_sender_codec(sender, track.set_codec)

        def on_start(leg: Any, transport: Any) -> None:
            track.start_stream(leg, hooks.RtpOutput(transport).send_rtp)

        hooks.hook_sender(
            sender,
            on_start=on_start,
            on_local_rtp=track.on_local_rtp,
            on_rtcp_out=track.on_rtcp_out,
            on_nack=track.on_nack,
            on_keyframe_request=track.on_keyframe_request,
            on_remb=track.on_remb,
        )
        hooks.report_sender_counts(sender, track.sent_counts)
        if track.kind == "video":
            track.on_switch = lambda: aiortc_private.force_keyframe(sender)


def packet_problems() -> list[str]:
    """What packet forwarding needs but the installed aiortc lacks (it also uses the frame path's
    hooks for directions it must transcode)."""
    return hooks.problems() + aiortc_private.passthrough_problems()


def packet_supported() -> tuple[bool, str]:
    """Whether packet forwarding can run with the installed aiortc, and why not."""
    supported, why = hooks.supported()
    if supported:
        supported, why = aiortc_private.passthrough_supported()
    return supported, why


def make_packet_forwarding(name: str = "packet") -> PacketForwarding:
    supported, why = packet_supported()
    if not supported:
        raise aiortc_private.PrivateApiError(f"packet forwarding unavailable: {why}; use --forwarding transcode")
    log.info("forwarding %s: RTP packets are forwarded as is when both legs share a codec", name)
    return PacketForwarding(name)
