"""Packet forwarding: each inbound RTP packet of a participant is rewritten and sent straight to the
partner's outbound stream, with no frame reassembly, re-packetization or task hop per frame.

The sources are :class:`~sfu.media.packet_feed.PacketFeed` objects, the outbound tracks
:mod:`sfu.media.packet_tracks`. A direction whose two legs negotiated different codecs is transcoded
through the frame path, as in ``passthrough`` mode.
"""

from __future__ import annotations

import logging

from aiortc import MediaStreamTrack, RTCDtlsTransport, RTCRtpSender, RTCRtpTransceiver

from . import aiortc_hooks
from .aiortc_hooks import packet_senders, packets
from .aiortc_hooks import server as server_hooks
from .feed import Feed
from .outbound import OutboundTrack
from .packet_feed import PacketFeed
from .packet_tracks import PacketAudioTrack, PacketVideoTrack
from .passthrough import Passthrough
from .rtp.legs import OutboundLeg
from .source import SourceId

log = logging.getLogger(__name__)


class PacketForwarding(Passthrough):
    """Forward RTP packets where both legs share a codec; decode and re-encode the other directions."""

    def __init__(self, name: str = "packet") -> None:
        super().__init__(name)

    def source(
        self, source_id: SourceId, track: MediaStreamTrack, transceiver: RTCRtpTransceiver
    ) -> Feed:
        return PacketFeed(source_id, track, transceiver.receiver)

    def outbound(self, kind: str) -> OutboundTrack:
        return PacketVideoTrack() if kind == "video" else PacketAudioTrack()

    def bind(self, track: OutboundTrack, sender: RTCRtpSender) -> None:
        assert isinstance(track, (PacketVideoTrack, PacketAudioTrack))
        server_hooks.on_sender_codec(sender, track.set_codec)

        def on_start(leg: OutboundLeg, transport: RTCDtlsTransport) -> None:
            track.start_stream(leg, packets.RtpOutput(transport).send_rtp)

        packet_senders.hook_sender(
            sender,
            on_start=on_start,
            on_local_rtp=track.on_local_rtp,
            on_rtcp_out=track.on_rtcp_out,
            on_nack=track.on_nack,
            on_keyframe_request=track.on_keyframe_request,
            on_remb=track.on_remb,
        )
        packet_senders.report_sender_counts(sender, track.sent_counts)
        if track.kind == "video":
            # Pictures to encode (placeholder, codec mismatch) start with a keyframe after a switch.
            track.on_switch = lambda: server_hooks.force_keyframe(sender)


def make_packet_forwarding(name: str = "packet") -> PacketForwarding:
    """Packet forwarding, or :class:`~sfu.media.aiortc_hooks.PrivateApiError` if the installed
    aiortc lacks what it needs."""
    supported, why = aiortc_hooks.packet_supported()
    if not supported:
        raise aiortc_hooks.PrivateApiError(f"packet forwarding unavailable: {why}; use --forwarding transcode")
    log.info("forwarding %s: RTP packets are forwarded as is when both legs share a codec", name)
    return PacketForwarding(name)
