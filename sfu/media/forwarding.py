"""The forwarding seam: how a partner's inbound media becomes a participant's outbound media.

A :class:`Forwarding` strategy makes the two ends: a :class:`~sfu.media.feed.Feed` for each inbound
track and an :class:`~sfu.media.outbound.OutboundTrack` for each outbound one, and wires the outbound
track to its aiortc sender. Pairing and signaling never see which strategy runs; they only call
:meth:`sfu.media.peer.PeerMedia.watch`.
"""

from __future__ import annotations

import abc

from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender

from . import aiortc_private
from .feed import DecodedFeed, Feed
from .outbound import OutboundAudioTrack, OutboundTrack, OutboundVideoTrack


class Forwarding(abc.ABC):
    """A way of forwarding media from one peer connection to another."""

    name: str

    @abc.abstractmethod
    def feed(self, track: MediaStreamTrack, receiver: RTCRtpReceiver) -> Feed:
        """Wrap an inbound track (called from ``pc.on("track")``)."""

    @abc.abstractmethod
    def outbound(self, kind: str) -> OutboundTrack:
        """A new outbound track of ``kind`` ("audio" or "video")."""

    def bind(self, track: OutboundTrack, sender: RTCRtpSender) -> None:
        """Called once the outbound track has its sender."""


class Transcode(Forwarding):
    """Decode the partner's media and re-encode it for the receiver (works with any codecs)."""

    name = "transcode"

    def feed(self, track: MediaStreamTrack, receiver: RTCRtpReceiver) -> Feed:
        return DecodedFeed(track)

    def outbound(self, kind: str) -> OutboundTrack:
        return OutboundVideoTrack() if kind == "video" else OutboundAudioTrack()

    def bind(self, track: OutboundTrack, sender: RTCRtpSender) -> None:
        if track.kind == "video":
            # The receiver's first frame from a new partner must be a keyframe.
            track.on_switch = lambda: aiortc_private.force_keyframe(sender)


def make_forwarding(name: str) -> Forwarding:
    if name == "transcode":
        return Transcode()
    raise ValueError(f"unknown forwarding mode {name!r}")
