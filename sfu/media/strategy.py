"""The forwarding seam: how a participant's inbound media becomes their partner's outbound media.

A :class:`Forwarding` strategy makes the two ends: a :class:`~sfu.media.source.Source` for each
inbound track and an :class:`~sfu.media.outbound.OutboundTrack` for each outbound one, and wires the
outbound track to its aiortc sender. Pairing and signaling never see which strategy runs; they only
say who watches whom (:meth:`sfu.media.router.MediaRouter.connect`).
"""

from __future__ import annotations

import abc

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCRtpTransceiver

from .feed import Feed
from .outbound import OutboundTrack
from .source import SourceId


class Forwarding(abc.ABC):
    """A way of forwarding media from one peer connection to another."""

    name: str

    def prepare(self, pc: RTCPeerConnection) -> None:  # noqa: B027 - an optional hook
        """Called after the client's offer is applied, before the answer is made (codec choice)."""

    @abc.abstractmethod
    def source(
        self, source_id: SourceId, track: MediaStreamTrack, transceiver: RTCRtpTransceiver
    ) -> Feed:
        """The source for an inbound track (called from ``pc.on("track")``, before RTP flows)."""

    @abc.abstractmethod
    def outbound(self, kind: str) -> OutboundTrack:
        """A new outbound track of ``kind`` ("audio" or "video")."""

    def bind(self, track: OutboundTrack, sender: RTCRtpSender) -> None:  # noqa: B027 - an optional hook
        """Called once the outbound track has its sender."""
