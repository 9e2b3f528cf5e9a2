"""One participant's peer connection with the server and the media flowing through it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Optional

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)

from . import addresses, aiortc_private
from .feed import Feed
from .forwarding import Forwarding
from .outbound import OutboundTrack
from .sdp_guard import check_offer

log = logging.getLogger(__name__)


class NegotiationError(Exception):
    """The client's offer could not be accepted."""


class NoMediaPort(NegotiationError):
    """Every UDP port of the configured media port range is in use."""


@dataclass
class PeerSettings:
    #: ICE servers the server itself uses (empty: host candidates only; nothing leaves the machine).
    ice_servers: list[RTCIceServer] = field(default_factory=list)
    #: Local addresses offered as host candidates; empty lets aioice pick every non-loopback one.
    host_addresses: list[str] = field(default_factory=list)
    #: Announced in place of the local address in host candidates (1:1 NAT); ``None``: as is.
    public_ip: Optional[str] = None
    #: Inclusive range of UDP ports for media sockets; ``None``: any.
    port_range: Optional[tuple[int, int]] = None

    def __post_init__(self) -> None:
        if self.public_ip is not None:
            addresses.check_public_ip(self.public_ip)


class PeerMedia:
    """Owns a peer connection, its inbound feeds and outbound tracks; closes them all."""

    def __init__(self, settings: PeerSettings, forwarding: Forwarding) -> None:
        self._settings = settings
        self._forwarding = forwarding
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=list(settings.ice_servers)))
        self.feeds: dict[str, Feed] = {}
        self.outbound: dict[str, OutboundTrack] = {}
        self.watching: Optional[PeerMedia] = None
        #: Called with the connection state when it becomes "failed" or "closed".
        self.on_ended: Optional[Callable[[str], None]] = None
        self._closed = False

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            receiver = next(
                t.receiver for t in self.pc.getTransceivers() if t.receiver.track is track
            )
            feed = self._forwarding.feed(track, receiver)
            self.feeds[track.kind] = feed
            # Someone may already be watching this participant.
            for sink in self._watchers.get(track.kind, []):
                sink.follow(feed)

        @self.pc.on("connectionstatechange")
        def on_state() -> None:
            state = self.pc.connectionState
            if state in ("failed", "closed") and not self._closed and self.on_ended:
                self.on_ended(state)

        self._watchers: dict[str, list[OutboundTrack]] = {}

    @property
    def forwarding(self) -> str:
        return self._forwarding.name

    async def accept(self, offer_sdp: str) -> str:
        """Apply a complete SDP offer; return the complete SDP answer."""
        if not offer_sdp.lstrip().startswith("v=0"):
            raise NegotiationError("not an SDP offer (it must start with v=0)")
        try:
            check_offer(offer_sdp)
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            if not any(t.kind in ("audio", "video") for t in self.pc.getTransceivers()):
                raise NegotiationError("the offer has no audio or video")
            self._forwarding.prepare(self.pc)
            for transceiver in self.pc.getTransceivers():
                kind = transceiver.kind
                if kind in self.outbound or kind not in ("audio", "video"):
                    continue
                track = self._forwarding.outbound(kind)
                sender = self.pc.addTrack(track)
                self._forwarding.bind(track, sender)
                self.outbound[kind] = track
            aiortc_private.set_host_addresses(
                self.pc, self._settings.host_addresses, port_range=self._settings.port_range
            )
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except aiortc_private.PortRangeExhausted as exc:
            raise NoMediaPort(str(exc)) from exc
        except Exception as exc:  # aiortc raises many types for bad SDP
            raise NegotiationError(str(exc) or type(exc).__name__) from exc
        return addresses.announce(self.pc.localDescription.sdp, self._settings.public_ip)

    def watch(self, other: Optional["PeerMedia"]) -> None:
        """Send ``other``'s media to this participant from now on (``None``: nobody's)."""
        if self.watching is not None:
            for kind, sink in self.outbound.items():
                watchers = self.watching._watchers.get(kind, [])
                if sink in watchers:
                    watchers.remove(sink)
        self.watching = other
        for kind, sink in self.outbound.items():
            if other is None:
                sink.follow(None)
                continue
            other._watchers.setdefault(kind, []).append(sink)
            sink.follow(other.feeds.get(kind))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.watch(None)
        for sink in self.outbound.values():
            sink.stop()
        for feed in self.feeds.values():
            await feed.close()
        await aiortc_private.close_peer_connection(self.pc)
