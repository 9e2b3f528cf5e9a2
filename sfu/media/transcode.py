"""Transcoding: decode the partner's media and re-encode it for the watcher (works with any codecs)."""

from __future__ import annotations

from aiortc import MediaStreamTrack, RTCRtpSender, RTCRtpTransceiver

from .aiortc_hooks import server as hooks
from .feed import DecodedFeed, Feed
from .outbound import OutboundAudioTrack, OutboundTrack, OutboundVideoTrack
from .source import SourceId
from .strategy import Forwarding


class Transcode(Forwarding):
    name = "transcode"

    def source(
        self, source_id: SourceId, track: MediaStreamTrack, transceiver: RTCRtpTransceiver
    ) -> Feed:
        return DecodedFeed(source_id, track, transceiver)

    def outbound(self, kind: str) -> OutboundTrack:
        return OutboundVideoTrack() if kind == "video" else OutboundAudioTrack()

    def bind(self, track: OutboundTrack, sender: RTCRtpSender) -> None:
        if track.kind == "video":
            # The receiver's first frame from a new partner must be a keyframe.
            track.on_switch = lambda: hooks.force_keyframe(sender)
