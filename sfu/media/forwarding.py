"""The forwarding seam: how a partner's inbound media becomes a participant's outbound media.

A :class:`Forwarding` strategy makes the two ends: a :class:`~sfu.media.feed.Feed` for each inbound
track and an :class:`~sfu.media.outbound.OutboundTrack` for each outbound one, and wires the outbound
track to its aiortc sender. Pairing and signaling never see which strategy runs; they only call
:meth:`sfu.media.peer.PeerMedia.watch`.
"""

from __future__ import annotations

import abc
import logging
from typing import Any, Iterable

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender

from . import aiortc_private
from .feed import DecodedFeed, Feed
from .outbound import OutboundAudioTrack, OutboundTrack, OutboundVideoTrack

log = logging.getLogger(__name__)

from .modes import FORWARDING_MODES as MODES  # noqa: F401  (re-exported)


class Forwarding(abc.ABC):
    """A way of forwarding media from one peer connection to another."""

    name: str

    def prepare(self, pc: RTCPeerConnection) -> None:
        """Called after the client's offer is applied, before the answer is made (codec choice)."""

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
    """``transcode``; ``passthrough`` (encoded frames, error if aiortc does not allow it); ``packet``
    (RTP packets, error if aiortc does not allow it); or ``auto`` (packets where aiortc allows it,
    else encoded frames, else transcoding everything).

    Both encoded modes still transcode a direction whose two legs negotiated different codecs.
    """
    if name == "transcode":
        return Transcode()
    if name == "packet":
        from .packets import make_packet_forwarding

        return make_packet_forwarding(name)
    if name == "auto":
        from .packets import make_packet_forwarding, packet_supported

        supported, why = packet_supported()
        if supported:
            return make_packet_forwarding(name)
        log.warning("packet forwarding unavailable (%s): forwarding encoded frames instead", why)
    if name in ("auto", "passthrough"):
        supported, why = aiortc_private.passthrough_supported()
        if not supported:
            if name == "passthrough":
                raise aiortc_private.PrivateApiError(
                    f"encoded forwarding unavailable: {why}; use --forwarding transcode"
                )
            log.warning("encoded forwarding unavailable (%s): transcoding everything", why)
            return Transcode()
        from .passthrough import Passthrough

        log.info("forwarding %s: encoded media is forwarded as is when both legs share a codec", name)
        return Passthrough(name)
    raise ValueError(f"unknown forwarding mode {name!r}")


def direction_modes(medias: Iterable[Any]) -> dict[str, dict[str, int]]:
    """How many outbound directions of each kind are forwarded encoded, transcoded or idle."""
    counts: dict[str, dict[str, int]] = {}
    for media in medias:
        for kind, track in getattr(media, "outbound", {}).items():
            if track.source is None:
                mode = "idle"
            else:
                mode = getattr(track, "mode", "transcode") or "starting"
            per_kind = counts.setdefault(kind, {})
            per_kind[mode] = per_kind.get(mode, 0) + 1
    return counts
