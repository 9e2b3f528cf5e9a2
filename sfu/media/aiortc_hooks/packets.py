"""Hooks the packet forwarding path needs: RTP taken off a transport, sent through its SRTP session.

Packet forwarding takes a publisher's decrypted RTP off its DTLS transport before aiortc parses it
(so no receive-side bandwidth estimation, no jitter buffer, no decoding), and sends rewritten
packets straight through a watcher's SRTP session and socket. aiortc 1.16 has no public API for
any of it. :func:`problems` (with :func:`sender_problems`) lists what is missing;
``tests/test_packet_hooks.py`` exercises the hooks on a real connection.

Hook points:
  * inbound: the ICE connection's ``data_received`` (called by aioice for each datagram) and the
    DTLS transport's ``_rx_srtp`` session; anything not claimed goes on to aiortc as before;
  * outbound: the DTLS transport's ``_tx_srtp`` and the ICE connection's nominated pair's socket;
  * receivers: ``RTCRtpReceiver.receive`` parameters (a public method, wrapped per instance), Sender
    Reports from the publisher (``_handle_rtcp_packet``) and the receiver's RTCP SSRC;
  * senders (:mod:`.packet_senders`): the sender's own packets, its feedback and its statistics.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import logging
import struct
import time
from collections.abc import Callable
from typing import Any, Protocol

import aioice
import aioice.ice
from aiortc import RTCDtlsTransport, RTCIceTransport, RTCRtpReceiver
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtcpSrPacket
from pylibsrtp import Error as SrtpError

from ..rtp import rtcp
from ..rtp.legs import Codec, InboundLeg
from .introspect import missing_callables, unused_names
from .sockets import drain_when_ready, skip_stun
from .srtp import SrtpPath
from .srtp import problems as srtp_problems

log = logging.getLogger(__name__)

_SSRC = struct.Struct("!I")


def problems() -> list[str]:
    """What taking and sending packets needs but the installed aiortc / aioice lacks (empty: none)."""
    found = unused_names(RTCDtlsTransport.__init__, ("_rx_srtp", "_tx_srtp", "_state"), "aiortc.RTCDtlsTransport.")
    found += unused_names(RTCIceTransport.__init__, ("_connection",), "aiortc.RTCIceTransport.")
    found += unused_names(
        getattr(aioice.ice.StunProtocol, "datagram_received", None),
        ("data_received", "local_candidate"),
        "aioice.ice.StunProtocol.datagram_received uses ",
    )
    found += missing_callables(aioice.Connection, ("data_received", "sendto"), "aioice.Connection")
    found += missing_callables(aioice.ice.StunProtocol, ("send_data",), "aioice.ice.StunProtocol")
    found += missing_callables(RTCRtpReceiver, ("receive", "_handle_rtcp_packet"), "aiortc.RTCRtpReceiver")
    found += missing_callables(RTCDtlsTransport, ("_handle_rtcp_data",), "aiortc.RTCDtlsTransport")
    found += unused_names(getattr(aioice.Connection, "sendto", None), ("_nominated",), "aioice.Connection.")
    found += unused_names(aioice.Connection.__init__, ("_protocols",), "aioice.Connection.")
    found += unused_names(RTCRtpReceiver.__init__, ("_RTCRtpReceiver__rtcp_ssrc",), "aiortc.RTCRtpReceiver.")
    if not hasattr(DtlsState, "CONNECTED"):
        found.append("aiortc.rtcdtlstransport.State.CONNECTED")
    return found + srtp_problems()


# -- negotiated parameters as plain values ---------------------------------------------------------


def codec_value(c: RTCRtpCodecParameters) -> Codec:
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
        codecs={int(c.payloadType): codec_value(c) for c in parameters.codecs if c.payloadType is not None},
        extensions={e.uri: e.id for e in parameters.headerExtensions},
    )
    for encoding in getattr(parameters, "encodings", []):
        if encoding.rtx is not None:
            leg.rtx_ssrcs[encoding.ssrc] = encoding.rtx.ssrc
    return leg


# -- inbound: take claimed SSRCs off the DTLS transport ----------------------------------------------


class InboundHandler(Protocol):
    """What an :class:`InboundTap` hands packets to."""

    #: False: let aiortc have the packets (e.g. the frame path must decode them).
    active: bool

    def on_rtp(self, packet: bytes, now: float) -> None:
        """One decrypted RTP packet of a claimed stream, and when it arrived (monotonic seconds)."""
        ...

    def on_sender_report(self, ssrc: int, ntp: int, now: float) -> None:
        """The publisher's Sender Report for one of the claimed streams."""
        ...


class FeedbackHandler(Protocol):
    """What a watcher's feedback about one of the server's outbound streams goes to."""

    def on_nack(self, lost: list[int]) -> None: ...

    def on_keyframe_request(self) -> None: ...

    def on_remb(self, bitrate: int) -> None: ...


class InboundTap:
    """Decrypts and hands over the RTP of claimed SSRCs / payload types before aiortc sees it, and
    the RTCP the packet path acts on (Sender Reports of claimed streams; NACK, PLI, FIR and REMB
    about the server's outbound streams). Other RTCP goes to aiortc as a whole compound packet."""

    def __init__(self, dtls: RTCDtlsTransport) -> None:
        self._dtls = dtls
        self._by_ssrc: dict[int, InboundHandler] = {}
        self._by_pt: dict[int, InboundHandler] = {}
        self._reports: dict[int, InboundHandler] = {}
        self._feedback: dict[int, FeedbackHandler] = {}
        self.failures = 0
        #: RTCP compounds acted on here, and those handed to aiortc whole.
        self.rtcp_handled = 0
        self.rtcp_passed = 0
        connection = dtls.transport._connection
        original = connection.data_received
        by_ssrc, by_pt = self._by_ssrc, self._by_pt
        clock = time.monotonic
        unpack_ssrc = _SSRC.unpack_from
        rx: list[SrtpPath | None] = [None]  # libsrtp called directly, for the session in use

        def data_received(data: bytes, component: int) -> None:
            if len(data) >= 8 and 127 < data[0] < 192 and 192 <= data[1] <= 223:
                if (self._feedback or self._reports) and self._rtcp(data, clock()):
                    return
            elif len(data) >= 12 and 127 < data[0] < 192:
                sink = by_ssrc.get(unpack_ssrc(data, 8)[0])
                if sink is None and by_pt:
                    sink = by_pt.get(data[1] & 0x7F)
                    if sink is not None:
                        by_ssrc[unpack_ssrc(data, 8)[0]] = sink
                if sink is not None and sink.active:
                    srtp = dtls._rx_srtp
                    if srtp is not None:
                        path = rx[0]
                        if path is None or path.session is not srtp:
                            path = rx[0] = SrtpPath(srtp)
                        plain = path.unprotect(data)
                        if plain is None:
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
                protocol.datagram_received = skip_stun(protocol, data_received)  # type: ignore[method-assign,assignment]
                drain_when_ready(protocol, data_received)

    @classmethod
    def of(cls, dtls: RTCDtlsTransport) -> InboundTap:
        """The tap of a transport (one per transport; audio and video share a bundled one)."""
        tap = getattr(dtls, "_sfu_inbound_tap", None)
        if tap is None:
            tap = cls(dtls)
            dtls._sfu_inbound_tap = tap  # type: ignore[attr-defined]
        return tap

    def claim(self, leg: InboundLeg, sink: InboundHandler) -> None:
        for media, rtx in leg.rtx_ssrcs.items():
            self._by_ssrc[media] = sink
            self._by_ssrc[rtx] = sink
            self._reports[media] = sink
        if not leg.rtx_ssrcs:
            for pt in leg.codecs:
                self._by_pt[pt] = sink

    def feedback_to(self, ssrc: int, handler: FeedbackHandler) -> None:
        """Hand the watcher's NACK, PLI, FIR and REMB about outbound stream ``ssrc`` to ``handler``."""
        self._feedback[ssrc] = handler

    def release(self, sink: InboundHandler | FeedbackHandler) -> None:
        tables: tuple[dict[int, Any], ...] = (self._by_ssrc, self._by_pt, self._reports, self._feedback)
        for table in tables:
            for key in [k for k, v in table.items() if v is sink]:
                del table[key]

    def _rtcp(self, data: bytes, now: float) -> bool:
        """Act on one SRTCP datagram; False: aiortc has it as before (not yet decryptable here)."""
        srtp = self._dtls._rx_srtp
        if srtp is None:
            return False
        try:
            plain = srtp.unprotect_rtcp(data)
        except SrtpError:
            self.failures += 1
            return True
        compound = rtcp.read_compound(plain)
        feedback = self._feedback
        reports = self._reports
        if (
            compound is None
            or any(ssrc not in feedback for ssrc in compound.media_ssrcs())
            or any(ssrc not in reports or not reports[ssrc].active for ssrc, _ in compound.sender_reports)
        ):
            # BYE, application packets, feedback about a stream aiortc sends itself, reports about
            # streams aiortc receives itself: all of it to aiortc.
            self.rtcp_passed += 1
            _spawn_rtcp(self._dtls, plain)
            return True
        self.rtcp_handled += 1
        try:
            for ssrc, ntp in compound.sender_reports:
                reports[ssrc].on_sender_report(ssrc, ntp, now)
            for ssrc, lost in compound.nacks:
                feedback[ssrc].on_nack(lost)
            for ssrc in compound.keyframes:
                feedback[ssrc].on_keyframe_request()
            for bitrate, ssrcs in compound.rembs:
                for ssrc in ssrcs:
                    handler = feedback.get(ssrc)
                    if handler is not None:
                        handler.on_remb(bitrate)
        except Exception:  # never let one packet break the socket's reader
            log.exception("RTCP handling failed on one packet")
        return True


def _spawn_rtcp(dtls: RTCDtlsTransport, plain: bytes) -> None:
    task = asyncio.ensure_future(dtls._handle_rtcp_data(plain))
    task.add_done_callback(_ignore)


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
        self._tx: SrtpPath | None = None
        self._pair: Any = None  #: the nominated pair last sent on, and its socket and address
        self._route: tuple[Any, Any] | None = None
        self.sent = 0
        self.dropped = 0

    def _write(self, data: bytes) -> bool:
        pair = self._connection._nominated.get(1)
        if pair is None:
            self.dropped += 1
            return False
        if pair is not self._pair:
            self._pair = pair
            protocol = pair.protocol
            direct = type(protocol) is aioice.ice.StunProtocol and protocol.transport is not None
            self._route = (protocol.transport, pair.remote_addr) if direct else None
        route = self._route
        if route is not None:
            transport = route[0]
            if transport.is_closing():
                self.dropped += 1
                return False
            transport.sendto(data, route[1])
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
        path = self._tx
        if path is None or path.session is not srtp:
            path = self._tx = SrtpPath(srtp)
        protected = path.protect(packet)
        if protected is None:
            self.dropped += 1
            return False
        route = self._route
        if route is not None and self._connection._nominated.get(1) is self._pair and not route[0].is_closing():
            route[0].sendto(protected, route[1])  # _write's usual case, one call less per packet
            self.sent += 1
            return True
        return self._write(protected)

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


