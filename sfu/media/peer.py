"""One participant's peer connection with the server: their sources and their outbound tracks."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)

from . import addresses
from .aiortc_hooks import ice, lifecycle
from .feed import Feed
from .outbound import OutboundTrack
from .sdp_guard import check_offer
from .source import KINDS, Source, SourceId
from .strategy import Forwarding

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
    public_ip: str | None = None
    #: Inclusive range of UDP ports for media sockets; ``None``: any.
    port_range: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.public_ip is not None:
            addresses.check_public_ip(self.public_ip)


class PeerMedia:
    """Owns a peer connection, its sources (inbound) and outbound tracks; closes them all.

    Who watches whom is not decided here: :class:`~sfu.media.router.MediaRouter` connects a partner's
    sources to :attr:`outbound` tracks by id.
    """

    def __init__(
        self, settings: PeerSettings, forwarding: Forwarding, participant: str | None = None
    ) -> None:
        self._settings = settings
        self._forwarding = forwarding
        self._participant = participant or f"peer-{secrets.token_hex(6)}"
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=list(settings.ice_servers)))
        #: This participant's inbound media by kind, as the sources partners are connected to.
        self.sources: dict[str, Feed] = {}
        #: What this participant is sent, by kind.
        self.outbound: dict[str, OutboundTrack] = {}
        #: Called with the connection state when it becomes "failed" or "closed".
        self.on_ended: Callable[[str], None] | None = None
        #: Called with each source when this participant's inbound track of its kind arrives.
        self.on_source: Callable[[Source], None] | None = None
        self._closed = False

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
            source = self._forwarding.source(SourceId(self._participant, track.kind), track, transceiver)
            self.sources[track.kind] = source
            if self.on_source is not None:
                self.on_source(source)

        @self.pc.on("connectionstatechange")
        def on_state() -> None:
            state = self.pc.connectionState
            if state in ("failed", "closed") and not self._closed and self.on_ended:
                self.on_ended(state)

    @property
    def participant(self) -> str:
        """Whose media this is: the participant id in every :class:`SourceId` of :attr:`sources`."""
        return self._participant

    @participant.setter
    def participant(self, participant: str) -> None:
        self._participant = participant
        for kind, source in self.sources.items():
            source.id = SourceId(participant, kind)

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
            if not any(t.kind in KINDS for t in self.pc.getTransceivers()):
                raise NegotiationError("the offer has no audio or video")
            self._forwarding.prepare(self.pc)
            for transceiver in self.pc.getTransceivers():
                kind = transceiver.kind
                if kind in self.outbound or kind not in KINDS:
                    continue
                track = self._forwarding.outbound(kind)
                sender = self.pc.addTrack(track)
                self._forwarding.bind(track, sender)
                self.outbound[kind] = track
            ice.set_host_addresses(
                self.pc, self._settings.host_addresses, port_range=self._settings.port_range
            )
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except ice.PortRangeExhausted as exc:
            raise NoMediaPort(str(exc)) from exc
        except Exception as exc:  # aiortc raises many types for bad SDP
            raise NegotiationError(str(exc) or type(exc).__name__) from exc
        return addresses.announce(self.pc.localDescription.sdp, self._settings.public_ip)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for track in self.outbound.values():
            track.connect(None)
            track.stop()
        for source in self.sources.values():
            await source.close()
        await lifecycle.close_peer_connection(self.pc)
