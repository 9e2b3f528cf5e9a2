"""Hooks only test clients, load generators and benchmarks use; the server never imports this module.

Link emulation, RTP packets timed at the socket, a sender's encoder bitrate and keyframe requests,
what ICE chose, a bare TURN allocation, aiortc's own codecs with RTP (de)packetisation, as a receiver
sees them, a receiver that counts what arrives without decoding it, and aiortc's RTP/RTCP parsers
as a reference for the server's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import aioice
import aioice.turn
import av
from aiortc import (
    RTCIceTransport,
    RTCPeerConnection,
    RTCRtpCodecParameters,
    RTCRtpReceiver,
    RTCRtpSender,
)
from aiortc.codecs import depayload, get_encoder
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RTCP_PSFB_APP, RTCP_PSFB_PLI, RtcpPacket, RtcpPsfbPacket, RtpPacket, unpack_remb_fci

from .ice import ice_connections
from .introspect import missing_attributes, missing_callables, unused_names
from .packet_times import problems as packet_time_problems
from .packet_times import time_transport
from .receive_buffers import (  # noqa: F401  (part of the testing hooks)
    CountingBuffer,
    RestartableVideoBuffer,
    count_received,
    restart_at_keyframe,
    restartable_video,
    waiting_for_keyframe,
)


def problems() -> list[str]:
    """What these hooks need but the installed aiortc/aioice lacks (empty: all present)."""
    found = unused_names(RTCIceTransport.__init__, ("_recv", "_send"), "aiortc.RTCIceTransport.")
    found += packet_time_problems()
    found += unused_names(
        RTCRtpSender.__init__,
        ("_RTCRtpSender__encoder", "_RTCRtpSender__force_keyframe", "_ssrc"),
        "aiortc.RTCRtpSender.",
    )
    probe = aioice.Connection(ice_controlling=True)
    found += missing_attributes(
        probe, ("_check_list", "_nominated", "remote_candidates"), "aioice.Connection"
    )
    found += missing_attributes(aioice.turn, ("TurnClientTcpProtocol",), "aioice.turn")
    found += unused_names(
        RTCRtpReceiver.__init__,
        ("_RTCRtpReceiver__nack_generator", "_RTCRtpReceiver__jitter_buffer", "_RTCRtpReceiver__codecs"),
        "aiortc.RTCRtpReceiver.",
    )
    found += missing_callables(RTCRtpReceiver, ("_send_rtcp_nack", "_send_rtcp_pli"), "aiortc.RTCRtpReceiver")
    found += missing_callables(JitterBuffer, ("add", "remove"), "aiortc.jitterbuffer.JitterBuffer")
    found += unused_names(JitterBuffer.__init__, ("_origin", "_packets"), "aiortc.jitterbuffer.JitterBuffer.")
    found += unused_names(
        RTCRtpReceiver._handle_rtp_packet, ("_RTCRtpReceiver__jitter_buffer",), "aiortc.RTCRtpReceiver._handle_rtp_packet: "
    )
    return found


# -- senders ---------------------------------------------------------------------------------------


def sender_ssrc(sender: RTCRtpSender) -> int:
    """The SSRC a sender's media goes out with."""
    ssrc: int = sender._ssrc
    return ssrc


def encoder_target_bitrate(sender: RTCRtpSender) -> int | None:
    """The bitrate a sender's encoder currently aims at (set by the remote REMB), if it has one."""
    encoder = getattr(sender, "_RTCRtpSender__encoder", None)
    return getattr(encoder, "target_bitrate", None)


def pin_encoder_bitrate(sender: RTCRtpSender, bitrate: int) -> None:
    """Make the sender's encoder aim at ``bitrate`` and ignore REMB (load generation: equal load).

    Applies from the sender's next frame; the encoder must exist (call after media started).
    """
    original = sender._handle_rtcp_packet

    async def _handle_rtcp_packet(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            return
        await original(packet)

    sender._handle_rtcp_packet = _handle_rtcp_packet  # type: ignore[method-assign]
    encoder = getattr(sender, "_RTCRtpSender__encoder", None)
    if encoder is not None and hasattr(encoder, "target_bitrate"):
        encoder.target_bitrate = bitrate


def take_keyframe_request(sender: RTCRtpSender) -> bool:
    """True once per keyframe request (PLI/FIR) received by ``sender`` since the last call.

    aiortc only records the request in a private flag that its encode path reads; a track that
    sends pre-encoded packets must read (and clear) it itself.
    """
    name = "_RTCRtpSender__force_keyframe"
    requested = bool(getattr(sender, name, False))
    if requested:
        setattr(sender, name, False)
    return requested


def count_keyframe_requests(sender: RTCRtpSender) -> Callable[[], int]:
    """From now on, count the PLIs ``sender`` receives; returns a function that reads the count."""
    original = sender._handle_rtcp_packet
    count = [0]

    async def _handle_rtcp_packet(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI:
            count[0] += 1
        await original(packet)

    sender._handle_rtcp_packet = _handle_rtcp_packet  # type: ignore[method-assign]
    return lambda: count[0]


# -- receivers -------------------------------------------------------------------------------------


def missing_packets(receiver: RTCRtpReceiver) -> list[int]:
    """Sequence numbers the receiver noticed missing and has not received since (its NACK list)."""
    generator = getattr(receiver, "_RTCRtpReceiver__nack_generator", None)
    return sorted(generator.missing) if generator is not None else []


async def send_nack(receiver: RTCRtpReceiver, media_ssrc: int, lost: list[int]) -> None:
    """Ask the remote sender of ``media_ssrc`` to send ``lost`` again (RTCP NACK)."""
    await receiver._send_rtcp_nack(media_ssrc, lost)


async def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    """Ask the remote sender of ``media_ssrc`` for a keyframe (RTCP PLI)."""
    await receiver._send_rtcp_pli(media_ssrc)


# -- links and ICE ---------------------------------------------------------------------------------


def wrap_inbound_datagrams(pc: RTCPeerConnection, wrap: Callable[[Any], Any]) -> None:
    """Replace each ICE transport's datagram reader ``recv`` with ``wrap(recv)`` (link emulation).

    Takes effect from the next datagram the DTLS transport reads.
    """
    seen: list[Any] = []
    for transceiver in pc.getTransceivers():
        dtls = transceiver.receiver.transport
        ice = dtls.transport if dtls is not None else None
        if ice is None or any(ice is s for s in seen):
            continue
        seen.append(ice)
        ice._recv = wrap(ice._recv)


def wrap_outbound_datagrams(pc: RTCPeerConnection, wrap: Callable[[Any], Any]) -> None:
    """Replace each ICE transport's datagram writer ``_send`` with ``wrap(_send)`` (link emulation).

    Takes effect from the next datagram the DTLS transport writes.
    """
    seen: list[Any] = []
    for transceiver in pc.getTransceivers():
        dtls = transceiver.sender.transport
        ice = getattr(dtls, "_sfu_real", dtls).transport if dtls is not None else None
        if ice is None or any(ice is s for s in seen):
            continue
        seen.append(ice)
        ice._send = wrap(ice._send)


def time_rtp(pc: RTCPeerConnection, sent: Callable[[bytes, float], None], received: Callable[[bytes, float], None]) -> None:
    """Report each RTP packet ``pc`` sends or receives (not RTCP), in the clear, with the wall-clock
    time (``time.time()``) its datagram left or reached the socket: read just before ``sendto``
    (after SRTP protection), or stamped by the kernel on arrival (:mod:`.packet_times`), however late
    the event loop reads it. Call once negotiation gave ``pc`` its transports, before media flows."""
    transports = {id(t.sender.transport): t.sender.transport for t in pc.getTransceivers() if t.sender.transport}
    for dtls in transports.values():
        time_transport(dtls, sent, received)


def remote_addresses(pc: RTCPeerConnection) -> set[str]:
    """Every remote address ICE knows on ``pc``: signalled candidates and peer-reflexive ones."""
    found: set[str] = set()
    for connection in ice_connections(pc):
        found.update(c.host for c in connection.remote_candidates)
        found.update(pair.remote_candidate.host for pair in connection._check_list)
    return found


def selected_pairs(pc: RTCPeerConnection) -> list[dict[str, Any]]:
    """The candidate pairs ICE chose on ``pc``: local candidate type, remote address and type."""
    chosen = []
    for connection in ice_connections(pc):
        for pair in connection._nominated.values():
            chosen.append(
                {
                    "local_type": pair.local_candidate.type,
                    "local": f"{pair.local_candidate.host}:{pair.local_candidate.port}",
                    "remote_type": pair.remote_candidate.type,
                    "remote": f"{pair.remote_candidate.host}:{pair.remote_candidate.port}",
                }
            )
    return chosen


@dataclass
class TurnTcpAllocation:
    """A relayed address allocated on a TURN server over TCP (aioice's client)."""

    relayed: tuple[str, int]
    _transport: Any
    _protocol: Any

    async def bind_channel(self, number: int, peer: tuple[str, int]) -> None:
        """Ask the server to relay to ``peer`` on channel ``number`` (raises if it refuses)."""
        await self._protocol.channel_bind(number, peer)

    def close(self) -> None:
        self._transport.close()


async def allocate_turn_tcp(
    server: tuple[str, int], username: str, password: str, timeout: float
) -> TurnTcpAllocation:
    """Allocate on a TURN server over TCP; raises (after closing the connection) if refused."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_connection(
        lambda: aioice.turn.TurnClientTcpProtocol(
            server, username=username, password=password, lifetime=600, channel_refresh_time=500
        ),
        host=server[0],
        port=server[1],
    )
    try:
        relayed = await asyncio.wait_for(protocol.connect(), timeout)
    except BaseException:
        transport.close()
        raise
    return TurnTcpAllocation(tuple(relayed), transport, protocol)  # type: ignore[arg-type]


# -- codecs as on the wire -------------------------------------------------------------------------


class WireEncoder:
    """aiortc's own encoder for ``codec``, packetised for RTP and depayloaded again: each encoded
    picture comes out as the bitstream a receiver's decoder is given."""

    def __init__(self, codec: RTCRtpCodecParameters, bitrate: int) -> None:
        self._codec = codec
        self._encoder = cast(Any, get_encoder(codec))  # VP8/H.264 encoders take a target bitrate
        self._encoder.target_bitrate = bitrate

    def encode(self, frame: av.VideoFrame, keyframe: bool = False) -> tuple[bytes, int]:
        """The encoded bitstream of one picture and its RTP timestamp."""
        payloads, timestamp = self._encoder.encode(frame, force_keyframe=keyframe)
        return b"".join(depayload(self._codec, p) for p in payloads), timestamp


def depayloaded_packet(
    *,
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    marker: bool,
    payload: bytes,
    data: bytes,
) -> RtpPacket:
    """An RTP packet as aiortc's receiver hands it to a frame tap: header, payload (with the codec's
    payload descriptor) and ``data``, the depayloaded bitstream."""
    packet = RtpPacket(
        payload_type=payload_type, sequence_number=sequence_number, timestamp=timestamp, ssrc=ssrc
    )
    packet.marker = int(marker)
    packet.payload = payload
    packet._data = data  # type: ignore[attr-defined]
    return packet


# -- aiortc's parsers, as a reference ----------------------------------------------------------------


def parse_rtp(data: bytes) -> RtpPacket:
    """aiortc's reading of one RTP packet (raises ``ValueError`` on garbage)."""
    return RtpPacket.parse(data)


def parse_rtcp(data: bytes) -> list[Any]:
    """aiortc's reading of one compound RTCP packet (raises ``ValueError`` on garbage)."""
    return list(RtcpPacket.parse(data))


def parse_remb(fci: bytes) -> tuple[int, list[int]]:
    """The bitrate and media SSRCs of a REMB's feedback control information, as aiortc reads them."""
    bitrate, ssrcs = unpack_remb_fci(fci)
    return bitrate, list(ssrcs)
