"""Every aiortc / aioice internal the packet forwarding path uses, in one place.

Packet forwarding takes a publisher's decrypted RTP off its DTLS transport before aiortc parses it
(so no receive-side bandwidth estimation, no jitter buffer, no decoding), and sends rewritten
packets straight through a watcher's SRTP session and socket. aiortc 1.16 has no public API for
any of it. :func:`problems` checks at start-up that each internal is still there;
``tests/test_packet_hooks.py`` exercises them on a real connection.

Hook points:
  * inbound: the ICE connection's ``data_received`` (called by aioice for each datagram) and the
    DTLS transport's ``_rx_srtp`` session; anything not claimed goes on to aiortc as before;
  * outbound: the DTLS transport's ``_tx_srtp`` and the ICE connection's nominated pair's socket;
    the sender's own packets (placeholder, transcoded pictures) are taken from its transport's
    ``_send_rtp`` so that one rewriter numbers everything on its SSRC;
  * feedback: the sender's ``_handle_rtcp_packet`` (NACK, PLI/FIR, REMB from the watcher), the
    receiver's ``_handle_rtcp_packet`` (Sender Reports from the publisher) and its RTCP SSRC;
  * negotiation: ``RTCRtpSender.send`` / ``RTCRtpReceiver.receive`` parameters (public methods,
    wrapped per instance).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable
from typing import Any

import aioice.ice
import aiortc
from aiortc import RTCDtlsTransport, RTCIceTransport, RTCRtpReceiver, RTCRtpSender
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    unpack_remb_fci,
)
from pylibsrtp import Error as SrtpError

from .rtp.legs import Codec, InboundLeg, OutboundLeg

log = logging.getLogger(__name__)

TESTED_AIORTC = ("1.16",)
_SSRC = struct.Struct("!I")


def _code_names(function: Any) -> tuple[str, ...]:
    code = getattr(function, "__code__", None)
    return tuple(code.co_names) if code is not None else ()


def problems() -> list[str]:
    """What packet forwarding needs but the installed aiortc / aioice lacks (empty: all present)."""
    found = []
    dtls_init = _code_names(RTCDtlsTransport.__init__)
    for name in ("_rx_srtp", "_tx_srtp", "_state"):
        if name not in dtls_init:
            found.append(f"aiortc.RTCDtlsTransport.{name}")
    if "_connection" not in _code_names(RTCIceTransport.__init__):
        found.append("aiortc.RTCIceTransport._connection")
    if "data_received" not in _code_names(aioice.ice.StunProtocol.datagram_received):
        found.append("aioice.ice.StunProtocol.datagram_received calls data_received")
    for owner, name in (
        (aioice.Connection, "data_received"),
        (aioice.Connection, "sendto"),
        (aioice.ice.StunProtocol, "send_data"),
        (RTCRtpSender, "send"),
        (RTCRtpSender, "_handle_rtcp_packet"),
        (RTCRtpSender, "_send_keyframe"),
        (RTCRtpReceiver, "receive"),
        (RTCRtpReceiver, "_handle_rtcp_packet"),
    ):
        if not callable(getattr(owner, name, None)):
            found.append(f"{owner.__module__}.{owner.__name__}.{name}")
    if "_nominated" not in _code_names(aioice.Connection.sendto):
        found.append("aioice.Connection._nominated")
    if "_protocols" not in _code_names(aioice.Connection.__init__):
        found.append("aioice.Connection._protocols")
    if "local_candidate" not in _code_names(aioice.ice.StunProtocol.datagram_received):
        found.append("aioice.ice.StunProtocol.local_candidate")
    sender_init = _code_names(RTCRtpSender.__init__)
    for name in ("_RTCRtpSender__transport", "_ssrc", "_rtx_ssrc"):
        if name not in sender_init:
            found.append(f"aiortc.RTCRtpSender.{name}")
    if "_send_rtp" not in _code_names(RTCRtpSender._run_rtp) or "transport" not in _code_names(RTCRtpSender._run_rtp):
        found.append("aiortc.RTCRtpSender._run_rtp sends through transport._send_rtp")
    if "_RTCRtpReceiver__rtcp_ssrc" not in _code_names(RTCRtpReceiver.__init__):
        found.append("aiortc.RTCRtpReceiver._RTCRtpReceiver__rtcp_ssrc")
    if not hasattr(DtlsState, "CONNECTED"):
        found.append("aiortc.rtcdtlstransport.State.CONNECTED")
    return found


def supported() -> tuple[bool, str]:
    found = problems()
    if found:
        return False, f"aiortc {aiortc.__version__} lacks {', '.join(found)}"
    if not aiortc.__version__.startswith(TESTED_AIORTC):
        return False, f"aiortc {aiortc.__version__} is untested (tested: {', '.join(TESTED_AIORTC)})"
    return True, ""


# -- negotiated parameters as plain values ---------------------------------------------------------


def _codec(c: RTCRtpCodecParameters) -> Codec:
    apt = c.parameters.get("apt")
    return Codec(
        payload_type=int(c.payloadType or 0),
        mime=c.mimeType.lower(),
        clock_rate=c.clockRate,
        packetization_mode=str(c.parameters.get("packetization-mode", "0")),
        apt=int(apt) if isinstance(apt, int) else None,
    )


def _inbound_leg(kind: str, parameters: Any) -> InboundLeg:
    leg = InboundLeg(
        kind=kind,
        codecs={int(c.payloadType): _codec(c) for c in parameters.codecs if c.payloadType is not None},
        extensions={e.uri: e.id for e in parameters.headerExtensions},
    )
    for encoding in getattr(parameters, "encodings", []):
        if encoding.rtx is not None:
            leg.rtx_ssrcs[encoding.ssrc] = encoding.rtx.ssrc
    return leg


def _outbound_leg(sender: RTCRtpSender, parameters: Any) -> OutboundLeg:
    primary = parameters.codecs[0]
    rtx_pt = next(
        (int(c.payloadType) for c in parameters.codecs
         if c.mimeType.lower().endswith("/rtx") and c.parameters.get("apt") == primary.payloadType),
        None,
    )
    return OutboundLeg(
        kind=sender.kind,
        codec=_codec(primary),
        ssrc=sender._ssrc,
        rtx_ssrc=sender._rtx_ssrc if rtx_pt is not None else None,
        rtx_payload_type=rtx_pt,
        mid=parameters.muxId,
        extensions={e.uri: e.id for e in parameters.headerExtensions},
        nack=any(f.type == "nack" and not f.parameter for f in primary.rtcpFeedback),
    )


# -- inbound: take claimed SSRCs off the DTLS transport ----------------------------------------------


class PacketSink:
    """What an :class:`InboundTap` hands packets to."""

    #: False: let aiortc have the packets (e.g. the frame path must decode them).
    active: bool = True

    def on_rtp(self, packet: bytes, now: float) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class InboundTap:
    """Decrypts and hands over the RTP of claimed SSRCs / payload types before aiortc sees it."""

    def __init__(self, dtls: RTCDtlsTransport) -> None:
        self._dtls = dtls
        self._by_ssrc: dict[int, PacketSink] = {}
        self._by_pt: dict[int, PacketSink] = {}
        self.failures = 0
        connection = dtls.transport._connection
        original = connection.data_received
        by_ssrc, by_pt = self._by_ssrc, self._by_pt
        clock = time.monotonic
        unpack_ssrc = _SSRC.unpack_from

        def data_received(data: bytes, component: int) -> None:
            if len(data) >= 12 and 127 < data[0] < 192 and not 192 <= data[1] <= 223:
                sink = by_ssrc.get(unpack_ssrc(data, 8)[0])
                if sink is None and by_pt:
                    sink = by_pt.get(data[1] & 0x7F)
                    if sink is not None:
                        by_ssrc[unpack_ssrc(data, 8)[0]] = sink
                if sink is not None and sink.active:
                    srtp = dtls._rx_srtp
                    if srtp is not None:
                        try:
                            plain = srtp.unprotect(data)
                        except SrtpError:
                            self.failures += 1
                            return
                        try:
                            sink.on_rtp(plain, clock())
                        except Exception:  # never let one packet break the socket's reader
                            log.exception("packet forwarding failed on one packet")
                        return
            original(data, component)

        connection.data_received = data_received  # type: ignore[method-assign]
        self._connection = connection
        self._original = original
        # aioice tries to parse every datagram as STUN first (an exception per media packet): RTP
        # and RTCP (first byte 128-191, never STUN's 0-3) go straight to the tap instead.
        for protocol in list(connection._protocols):
            if type(protocol) is aioice.ice.StunProtocol:
                protocol.datagram_received = _skip_stun(protocol, data_received)  # type: ignore[method-assign,assignment]

    @classmethod
    def of(cls, dtls: RTCDtlsTransport) -> InboundTap:
        """The tap of a transport (one per transport; audio and video share a bundled one)."""
        tap = getattr(dtls, "_sfu_inbound_tap", None)
        if tap is None:
            tap = cls(dtls)
            dtls._sfu_inbound_tap = tap  # type: ignore[attr-defined]
        return tap

    def claim(self, leg: InboundLeg, sink: PacketSink) -> None:
        for media, rtx in leg.rtx_ssrcs.items():
            self._by_ssrc[media] = sink
            self._by_ssrc[rtx] = sink
        if not leg.rtx_ssrcs:
            for pt in leg.codecs:
                self._by_pt[pt] = sink

    def release(self, sink: PacketSink) -> None:
        for table in (self._by_ssrc, self._by_pt):
            for key in [k for k, v in table.items() if v is sink]:
                del table[key]


def _skip_stun(protocol: Any, data_received: Callable[[bytes, int], None]) -> Callable[[bytes, Any], None]:
    original = protocol.datagram_received
    component = protocol.local_candidate.component

    def datagram_received(data: bytes, addr: Any) -> None:
        if data and 127 < data[0] < 192:
            data_received(data, component)
        else:
            original(data, addr)

    return datagram_received


def on_receiver_parameters(receiver: RTCRtpReceiver, callback: Callable[[InboundLeg, RTCDtlsTransport], None]) -> None:
    """Call ``callback(leg, transport)`` once the receiver starts (DTLS connected, before media)."""
    original = receiver.receive

    async def receive(parameters: Any) -> None:
        await original(parameters)
        # ``receive`` is also how aiortc learns SSRCs: only a signalled SSRC counts as one.
        leg = _inbound_leg(receiver.track.kind if receiver.track else "video", parameters)
        if not leg.rtx_ssrcs:
            for encoding in getattr(parameters, "encodings", []):
                leg.rtx_ssrcs.setdefault(encoding.ssrc, encoding.ssrc)
        callback(leg, receiver.transport)

    receiver.receive = receive  # type: ignore[method-assign]


def receiver_rtcp_ssrc(receiver: RTCRtpReceiver) -> int | None:
    return receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]


def on_sender_report(receiver: RTCRtpReceiver, callback: Callable[[int, int, float], None]) -> None:
    """Also call ``callback(ssrc, ntp_timestamp, now)`` for each Sender Report the publisher sends."""
    original = receiver._handle_rtcp_packet

    async def _handle_rtcp_packet(packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            callback(packet.ssrc, packet.sender_info.ntp_timestamp, time.monotonic())
        await original(packet)

    receiver._handle_rtcp_packet = _handle_rtcp_packet  # type: ignore[method-assign]


# -- outbound: send through a transport's SRTP session and socket ------------------------------------


class RtpOutput:
    """Protects and sends packets on a DTLS transport, without a task per packet."""

    def __init__(self, dtls: RTCDtlsTransport) -> None:
        self._dtls = dtls
        self._connection = dtls.transport._connection
        self.sent = 0
        self.dropped = 0

    def _write(self, data: bytes) -> bool:
        pair = self._connection._nominated.get(1)
        if pair is None:
            self.dropped += 1
            return False
        protocol = pair.protocol
        if type(protocol) is aioice.ice.StunProtocol:
            transport = protocol.transport
            if transport is None or transport.is_closing():
                self.dropped += 1
                return False
            transport.sendto(data, pair.remote_addr)
        else:  # relayed through TURN: aioice's own (asynchronous) path
            task = asyncio.ensure_future(self._connection.sendto(data, 1))
            task.add_done_callback(_ignore)
        self.sent += 1
        return True

    def send_rtp(self, packet: bytes) -> bool:
        dtls = self._dtls
        srtp = dtls._tx_srtp
        if srtp is None or dtls._state is not DtlsState.CONNECTED:
            self.dropped += 1
            return False
        try:
            return self._write(srtp.protect(packet))
        except SrtpError:
            self.dropped += 1
            return False

    def send_rtcp(self, packet: bytes) -> bool:
        dtls = self._dtls
        srtp = dtls._tx_srtp
        if srtp is None or dtls._state is not DtlsState.CONNECTED:
            return False
        try:
            return self._write(srtp.protect_rtcp(packet))
        except SrtpError:
            return False


def _ignore(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("send failed: %r", task.exception())


class _SenderTransport:
    """Stands in for a sender's DTLS transport: its RTP goes to the packet path, its RTCP is edited
    (Sender Reports) and sent; everything else is the real transport's."""

    def __init__(self, real: RTCDtlsTransport, on_rtp: Callable[[bytes], None],
                 on_rtcp: Callable[[bytearray], None]) -> None:
        self._sfu_real = real
        self._sfu_on_rtp = on_rtp
        self._sfu_on_rtcp = on_rtcp

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sfu_real, name)

    async def _send_rtp(self, data: bytes) -> None:
        if len(data) > 1 and 192 <= data[1] <= 223:
            edited = bytearray(data)
            self._sfu_on_rtcp(edited)
            await self._sfu_real._send_rtp(bytes(edited))
        else:
            self._sfu_on_rtp(data)


def hook_sender(
    sender: RTCRtpSender,
    *,
    on_start: Callable[[OutboundLeg, RTCDtlsTransport], None],
    on_local_rtp: Callable[[bytes], None],
    on_rtcp_out: Callable[[bytearray], None],
    on_nack: Callable[[list[int]], None],
    on_keyframe_request: Callable[[], None],
    on_remb: Callable[[int], None],
) -> None:
    """Route a sender's own RTP through the packet path and its feedback to callbacks.

    ``on_start(leg, transport)`` runs when negotiation starts the sender. NACKs are answered by the
    packet path only (aiortc's own history numbers packets differently); PLI/FIR and REMB still
    reach aiortc too (its encoder obeys them when it encodes).
    """
    original_send = sender.send

    async def send(parameters: Any) -> None:
        real = sender.transport
        on_start(_outbound_leg(sender, parameters), real)
        sender._RTCRtpSender__transport = _SenderTransport(real, on_local_rtp, on_rtcp_out)  # type: ignore[attr-defined]
        await original_send(parameters)

    sender.send = send  # type: ignore[method-assign]
    original_rtcp = sender._handle_rtcp_packet

    async def _handle_rtcp_packet(packet: Any) -> None:
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            on_nack(list(packet.lost))
            return
        await original_rtcp(packet)
        if isinstance(packet, RtcpPsfbPacket):
            if packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                on_keyframe_request()
            elif packet.fmt == RTCP_PSFB_APP:
                try:
                    bps, ssrcs = unpack_remb_fci(packet.fci)
                except ValueError:
                    return
                if sender._ssrc in ssrcs:
                    on_remb(bps)

    sender._handle_rtcp_packet = _handle_rtcp_packet  # type: ignore[method-assign]


def report_sender_counts(sender: RTCRtpSender, counts: Callable[[], tuple[int, int] | None]) -> None:
    """Make ``sender.getStats()`` report ``counts()`` (packets, payload bytes) as sent: the packet
    path sends on the sender's SSRC without aiortc counting it."""
    original = sender.getStats

    async def getStats() -> Any:
        report = await original()
        sent = counts()
        if sent is not None:
            for stats in report.values():
                if getattr(stats, "type", None) == "outbound-rtp":
                    stats.packetsSent, stats.bytesSent = sent
        return report

    sender.getStats = getStats  # type: ignore[method-assign]


def real_transport(sender: RTCRtpSender) -> RTCDtlsTransport:
    """The sender's DTLS transport, unwrapped."""
    transport = sender.transport
    return getattr(transport, "_sfu_real", transport)


# -- test clients ------------------------------------------------------------------------------------


def wrap_outbound_datagrams(pc: Any, wrap: Callable[[Any], Any]) -> None:
    """Replace each ICE transport's datagram writer ``_send`` with ``wrap(_send)`` (link emulation
    for test clients; the inbound side is ``aiortc_private.wrap_inbound_datagrams``)."""
    seen: list[Any] = []
    for transceiver in pc.getTransceivers():
        dtls = transceiver.sender.transport
        ice = getattr(dtls, "_sfu_real", dtls).transport if dtls is not None else None
        if ice is None or any(ice is s for s in seen):
            continue
        seen.append(ice)
        ice._send = wrap(ice._send)
