"""Outbound tracks of the packet forwarding mode: one :class:`~sfu.media.rtp.stream.OutboundStream`
per watcher sender, fed either packet by packet by the partner's source (same codec on both legs) or
by aiortc's own encoder (the grey placeholder while unpaired, or transcoded pictures when the codecs
differ), whose packets the stream renumbers like any other source's.

The stream follows a source by its :class:`~sfu.media.source.SourceId` (a value): packets handed to
it under any other id are refused. These tracks are packet sinks (:class:`~sfu.media.packet_feed.PacketSink`);
they never import the feed: a source's negotiated leg is read as ``source.leg``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from .encoded import EncodedFrame
from .passthrough import KEYFRAME_RETRY, PassthroughAudioTrack, PassthroughVideoTrack
from .rtp.legs import InboundLeg, OutboundLeg, payload_type_map
from .rtp.stream import LOCAL, OutboundStream
from .source import Source

log = logging.getLogger(__name__)

#: Seconds after a watcher's connection starts during which its first packets may be dropped.
FRESH_CONNECTION = 2.0
#: Seconds after the first keyframe sent on a fresh connection before asking for another.
FRESH_REASK = 0.3


class _PacketOutput:
    """What both packet tracks share: the stream, its routes and the watcher's feedback."""

    stream: OutboundStream | None
    _source: Source | None
    _hidden: bool
    state: Any  #: the passthrough track's mode tracking
    on_first_item: Callable[[], None] | None
    kind: str

    def _init_packets(self) -> None:
        self.stream = None
        self._stream_started = 0.0
        self._routes: dict[int, tuple[InboundLeg, dict[int, int]]] = {}
        self._wall_offset = time.time() - time.monotonic()

    # -- set-up ----------------------------------------------------------------------------------
    def start_stream(self, leg: OutboundLeg, send: Callable[[bytes], object]) -> None:
        """The sender started (negotiation done): from now on every packet goes through a stream."""
        self.stream = OutboundStream(leg, send, wall_offset=self._wall_offset)
        self.stream.on_first_packet = self._first_packet
        self._stream_started = time.monotonic()
        self._routes.clear()
        self._follow_in_stream()
        reroute = getattr(self._source, "reroute", None)
        if reroute is not None:
            reroute()

    def packet_route(self, leg: InboundLeg | None) -> tuple[OutboundStream, dict[int, int]] | None:
        """The stream and payload-type map for packets of a publisher's ``leg``, or ``None`` if they
        cannot be forwarded as packets (no stream yet, source not started, or no codec in common)."""
        stream = self.stream
        if stream is None or leg is None:
            return None
        key = id(leg)
        cached = self._routes.get(key)
        if cached is None or cached[0] is not leg:
            cached = self._routes[key] = (leg, payload_type_map(leg, stream.leg))
        return (stream, cached[1]) if cached[1] else None

    @property
    def packet_mode(self) -> bool:
        """Forwarding the source's packets (not while it is hidden: the placeholder is sent then)."""
        source = self._source
        if source is None or self._hidden:
            return False
        return self.packet_route(getattr(source, "leg", None)) is not None

    def reroute(self) -> None:
        """The followed feed's negotiation finished: re-decide packets or pictures."""
        self._follow_in_stream()

    def _follow_in_stream(self) -> None:
        if self.stream is not None:
            source = self._source
            self.stream.follow(source.id if source is not None and self.packet_mode else LOCAL)

    def _first_packet(self, source: object) -> None:
        if source is LOCAL:
            return
        if self.state.mode != "packet":
            self.state.mode = "packet"
            log.info("%s forwarding packet (%x)", self.kind, id(self) & 0xFFFFFF)
        if self.on_first_item is not None:
            self.on_first_item()
        if self.kind == "video" and time.monotonic() - self._stream_started < FRESH_CONNECTION:
            # The watcher may still be finishing its DTLS handshake and drop the first packets
            # (aiortc does so silently): ask for one more keyframe shortly after.
            asyncio.get_running_loop().call_later(FRESH_REASK, self._reask, source)

    def _reask(self, source: object) -> None:
        current = self._source
        if current is not None and current.id == source and self.packet_mode:
            current.request_keyframe()

    def sent_counts(self) -> tuple[int, int] | None:
        """Packets and payload bytes sent on this track's SSRC (forwarded and the server's own)."""
        stream = self.stream
        return None if stream is None else (stream.packets, stream.octets)

    # -- aiortc's sender -------------------------------------------------------------------------
    def on_local_rtp(self, packet: bytes) -> None:
        if self.stream is not None:
            self.stream.send_local(packet, time.monotonic())

    def on_rtcp_out(self, compound: bytearray) -> None:
        if self.stream is not None:
            self.stream.sender_report(compound, time.monotonic())

    # -- the watcher's feedback ------------------------------------------------------------------
    def on_nack(self, lost: list[int]) -> None:
        if self.stream is not None:
            self.stream.resend(lost, time.monotonic())

    def on_keyframe_request(self) -> None:
        """The watcher reported picture loss (PLI/FIR): ask its partner when forwarding packets."""
        source = self._source
        if source is not None and self.packet_mode:
            source.request_keyframe()

    def on_remb(self, bitrate: int) -> None:
        """The watcher's bandwidth estimate: cap its partner's publishing rate."""
        source = self._source
        if source is not None and self.packet_mode:
            source.set_bitrate_cap(bitrate)

    def accepts(self, codec: Any) -> bool:
        """Encoded frames are never sent as frames here: packets, or decoded pictures."""
        return False


class PacketVideoTrack(_PacketOutput, PassthroughVideoTrack):
    def __init__(self) -> None:
        super().__init__()
        self._init_packets()

    def _switched(self) -> None:
        super()._switched()
        self._follow_in_stream()

    def set_hidden(self, hidden: bool) -> None:
        """Hidden: the stream sends the server's placeholder instead of the source's packets; shown
        again: the source's packets resume at its next keyframe."""
        super().set_hidden(hidden)
        self._follow_in_stream()
        if not hidden and self.packet_mode:
            self._ask_keyframe()

    @property
    def mode(self) -> str | None:
        if self._source is None:
            return None
        stream = self.stream
        if self.packet_mode and stream is not None:
            return "packet" if stream.started and not stream.waiting_keyframe else None
        return "transcode" if self.state.mode == "transcode" else None

    async def recv(self) -> Any:
        while True:
            if self._hidden and self._source is not None:
                await self._next_item(self._placeholder_timeout())
                if self._hidden:
                    return self._stamp(self.placeholder_frame())
                continue
            if self.packet_mode:
                self._first_pending = False  # the stream reports the first packet itself
                item = await self._next_item(KEYFRAME_RETRY)
                if item is None and self.packet_mode and self.stream is not None and self.stream.waiting_keyframe:
                    self._ask_keyframe()
                continue  # nothing is queued in packet mode; a stale picture is dropped
            timeout = self._placeholder_timeout() if self._source is None else KEYFRAME_RETRY
            item = await self._next_item(timeout)
            if item is None:
                if self._source is None:
                    self.state.set(None)
                    return self._stamp(self.placeholder_frame())
                continue
            if isinstance(item, EncodedFrame) or self.packet_mode:
                continue
            self.state.set("transcode", self._source.codec if self._source is not None else None)
            return self._stamp(item)


class PacketAudioTrack(_PacketOutput, PassthroughAudioTrack):
    def __init__(self) -> None:
        super().__init__()
        self._init_packets()

    def _switched(self) -> None:
        super()._switched()
        self._follow_in_stream()

    @property
    def mode(self) -> str | None:
        if self._source is None:
            return None
        stream = self.stream
        if self.packet_mode and stream is not None:
            return "packet" if stream.started else None
        return "transcode" if self.state.mode == "transcode" else None

    async def recv(self) -> Any:
        while True:
            item = await self._next_item(None)
            if item is None or self.packet_mode or isinstance(item, EncodedFrame):
                continue  # packets go their own way; a picture queued before a switch is dropped
            self._src_ts = None
            self.state.set("transcode", self._source.codec if self._source is not None else None)
            return self._stamp(item)

    def on_keyframe_request(self) -> None:
        pass

    def on_remb(self, bitrate: int) -> None:
        pass
