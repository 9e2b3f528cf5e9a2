"""Every use of aiortc / aioice internals, in one place, checked against the installed versions.

aiortc has no public API for forcing a keyframe on a sender's encoder or for choosing which local
addresses ICE gathers on. The hooks below use private names; :func:`check` verifies at start-up that
they still exist, and ``tests/test_aiortc_private.py`` fails loudly if an aiortc upgrade moves them.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import random
import socket
from typing import Any, Callable, Optional, Protocol, Sequence

import aioice
import aioice.candidate
import aioice.ice
import aioice.turn
import aiortc
from aiortc import RTCIceTransport, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RtcpPsfbPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
)

log = logging.getLogger(__name__)

#: Versions these hooks were written and tested against.
TESTED_AIORTC = ("1.16",)
TESTED_AIOICE = ("0.13",)


class PrivateApiError(RuntimeError):
    """The installed aiortc/aioice no longer has an internal this server relies on."""


def check() -> None:
    """Raise :class:`PrivateApiError` if an internal every forwarding mode uses is missing."""
    problems = []
    if not callable(getattr(RTCRtpSender, "_send_keyframe", None)):
        problems.append("aiortc.RTCRtpSender._send_keyframe")
    if not callable(getattr(aioice.Connection, "get_component_candidates", None)):
        problems.append("aioice.Connection.get_component_candidates")
    for owner, name in (
        (aioice.ice, "StunProtocol"),
        (aioice.ice, "server_reflexive_candidate"),
        (aioice.candidate, "candidate_foundation"),
        (aioice.candidate, "candidate_priority"),
        (aioice.turn, "UDP_SOCKET_BUFFER_SIZE"),
    ):
        if not hasattr(owner, name):
            problems.append(f"{owner.__name__}.{name}")
    probe = aioice.Connection(ice_controlling=True)
    for name in ("_protocols", "_check_list", "_nominated", "stun_server", "remote_candidates"):
        if not hasattr(probe, name):
            problems.append(f"aioice.Connection.{name}")
    if problems:
        raise PrivateApiError(
            f"aiortc {aiortc.__version__} / aioice {aioice.__version__} lack {', '.join(problems)}; "
            f"sfu was tested with aiortc {', '.join(TESTED_AIORTC)} and aioice {', '.join(TESTED_AIOICE)}"
        )


def force_keyframe(sender: RTCRtpSender) -> None:
    """Make the sender's encoder emit a keyframe for the next frame it encodes."""
    sender._send_keyframe()


def _ice_connections(pc: RTCPeerConnection) -> list[Any]:
    connections = []
    for transceiver in pc.getTransceivers():
        transport = transceiver.sender.transport
        if transport is None:
            continue
        connection = transport.transport.iceGatherer._connection
        if connection not in connections:
            connections.append(connection)
    return connections


def set_host_addresses(
    pc: RTCPeerConnection,
    addresses: Sequence[str],
    *,
    port_range: Optional[tuple[int, int]] = None,
) -> None:
    """Gather host candidates on exactly ``addresses``, on UDP ports within ``port_range``.

    aioice binds every non-loopback interface on a port the system picks, never offers 127.0.0.1
    and has no option for a port range. Call after the transceivers exist and before
    ``setLocalDescription`` (which gathers). An empty ``addresses`` keeps aioice's choice of
    interfaces; ``port_range=None`` any port. STUN and TURN candidates are gathered as aioice does.
    """
    if not addresses and port_range is None:
        return
    chosen = list(addresses)
    for connection in _ice_connections(pc):
        original = connection.get_component_candidates
        if port_range is None:

            async def get_component_candidates(
                component: int, addresses: list[str], timeout: int = 5, _original: Any = original
            ) -> Any:
                return await _original(component=component, addresses=chosen, timeout=timeout)

        else:

            async def get_component_candidates(
                component: int,
                addresses: list[str],
                timeout: int = 5,
                _original: Any = original,
                _connection: Any = connection,
            ) -> Any:
                return await _gather_in_range(
                    _connection, _original, component, chosen or addresses, port_range, timeout
                )

        connection.get_component_candidates = get_component_candidates


# -- encoded forwarding (passthrough) -----------------------------------------------------------
#
# Forwarding encoded media needs five things aiortc 1.16 has no public API for:
#   1. taking complete encoded frames off a receiver before its decoder (replace its jitter buffer),
#   2. knowing which codec each inbound payload type is and what a sender negotiated,
#   3. sending RTCP PLI (keyframe request) and REMB (bitrate cap) from a receiver,
#   4. seeing PLI/FIR/REMB that arrive on a sender (aiortc only feeds them to its own encoder),
#   5. putting the preferred codec first in the answer.


def _code_names(function: Any) -> tuple[str, ...]:
    code = getattr(function, "__code__", None)
    return tuple(code.co_names) if code is not None else ()


def passthrough_problems() -> list[str]:
    """What the encoded-forwarding hooks need but the installed aiortc lacks (empty: all present)."""
    problems = []
    receiver_init = _code_names(RTCRtpReceiver.__init__)
    handle_rtp = _code_names(getattr(RTCRtpReceiver, "_handle_rtp_packet", None))
    for name in ("_RTCRtpReceiver__jitter_buffer", "_RTCRtpReceiver__codecs", "_RTCRtpReceiver__rtcp_ssrc"):
        if name not in receiver_init:
            problems.append(f"aiortc.RTCRtpReceiver.{name}")
    for name in ("_RTCRtpReceiver__jitter_buffer", "add", "_data"):
        if name not in handle_rtp:
            problems.append(f"aiortc.RTCRtpReceiver._handle_rtp_packet uses {name}")
    for owner, name in (
        (RTCRtpReceiver, "_send_rtcp"),
        (RTCRtpReceiver, "_send_rtcp_pli"),
        (RTCRtpReceiver, "_handle_rtp_packet"),
        (RTCRtpSender, "_handle_rtcp_packet"),
        (RTCRtpSender, "send"),
    ):
        if not callable(getattr(owner, name, None)):
            problems.append(f"aiortc.{owner.__name__}.{name}")
    if "_codecs" not in _code_names(RTCRtpTransceiver.__init__):
        problems.append("aiortc.RTCRtpTransceiver._codecs")
    if "_recv" not in _code_names(RTCIceTransport.__init__):
        problems.append("aiortc.RTCIceTransport._recv")
    if "_RTCRtpSender__encoder" not in _code_names(RTCRtpSender.__init__):
        problems.append("aiortc.RTCRtpSender._RTCRtpSender__encoder")
    if "pack" not in _code_names(getattr(RTCRtpSender, "_next_encoded_frame", None)):
        problems.append("aiortc.RTCRtpSender._next_encoded_frame packs pre-encoded data")
    return problems


def passthrough_supported() -> tuple[bool, str]:
    """Whether encoded forwarding can run here, and why not."""
    problems = passthrough_problems()
    if problems:
        return False, f"aiortc {aiortc.__version__} lacks {', '.join(problems)}"
    if not aiortc.__version__.startswith(TESTED_AIORTC):
        return False, f"aiortc {aiortc.__version__} is untested (tested: {', '.join(TESTED_AIORTC)})"
    return True, ""


class FrameTap(Protocol):
    """What replaces a receiver's jitter buffer: takes depayloaded packets (``packet._data``)."""

    def add(self, packet: RtpPacket) -> tuple[bool, None]: ...


def tap_receiver(receiver: RTCRtpReceiver, tap: FrameTap) -> None:
    """Route the receiver's depayloaded packets to ``tap`` instead of its jitter buffer.

    Call from ``pc.on("track")`` (before RTP flows). The tap returns no frame, so aiortc's decoder
    thread for this receiver never decodes anything.
    """
    receiver._RTCRtpReceiver__jitter_buffer = tap  # type: ignore[attr-defined]


def packet_data(packet: RtpPacket) -> bytes:
    """The depayloaded codec bitstream of a packet handed to a tap."""
    return packet._data  # type: ignore[attr-defined]


def receiver_codec(receiver: RTCRtpReceiver, payload_type: int) -> Optional[RTCRtpCodecParameters]:
    return receiver._RTCRtpReceiver__codecs.get(payload_type)  # type: ignore[attr-defined]


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    return transceiver._codecs  # type: ignore[attr-defined]


def prefer_codecs(transceiver: RTCRtpTransceiver, order: Sequence[str]) -> None:
    """After ``setRemoteDescription``: put codecs named in ``order`` (mime types) first.

    The answer lists codecs in this order and both browsers and aiortc send with the first one, so
    every participant who allows it ends up on the same codec and their media can be forwarded as is.
    """
    codecs = list(transceiver._codecs)  # type: ignore[attr-defined]
    rank = {mime.lower(): i for i, mime in enumerate(order)}
    primaries = [c for c in codecs if c.mimeType.lower() != f"{transceiver.kind}/rtx"]
    primaries.sort(key=lambda c: rank.get(c.mimeType.lower(), len(rank)))  # stable
    ordered = []
    for codec in primaries:
        ordered.append(codec)
        ordered += [
            c
            for c in codecs
            if c.mimeType.lower().endswith("/rtx") and c.parameters.get("apt") == codec.payloadType
        ]
    transceiver._codecs = ordered  # type: ignore[attr-defined]


def _spawn(coro: Any) -> None:
    task = asyncio.ensure_future(coro)
    task.add_done_callback(_ignore_result)


def _ignore_result(task: "asyncio.Future[Any]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("RTCP send failed: %r", task.exception())


def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    """Ask the remote publisher of ``media_ssrc`` for a keyframe (RTCP PLI)."""
    _spawn(receiver._send_rtcp_pli(media_ssrc))


def send_remb(receiver: RTCRtpReceiver, bitrate: int, media_ssrcs: list[int]) -> None:
    """Tell the remote publisher to send at most ``bitrate`` bps (RTCP REMB)."""
    rtcp_ssrc = receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
    if rtcp_ssrc is None or not media_ssrcs:
        return
    packet = RtcpPsfbPacket(
        fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(int(bitrate), media_ssrcs)
    )
    # The class's method: not the instance's rewrite hook (which is for aiortc's own REMBs).
    _spawn(RTCRtpReceiver._send_rtcp(receiver, packet))


def rewrite_receiver_remb(receiver: RTCRtpReceiver, rewrite: Callable[[int], Optional[int]]) -> None:
    """Pass every REMB the receiver's own estimator sends through ``rewrite(bitrate)``, which
    returns the bitrate to send, or ``None`` to send nothing this time."""
    original = receiver._send_rtcp

    async def _send_rtcp(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                bitrate, ssrcs = None, []
            if bitrate is not None:
                value = rewrite(bitrate)
                if value is None:
                    return
                packet.fci = pack_remb_fci(int(value), ssrcs)
        await original(packet)

    receiver._send_rtcp = _send_rtcp  # type: ignore[method-assign]


def on_sender_feedback(
    sender: RTCRtpSender,
    *,
    keyframe_request: Callable[[], None],
    bitrate: Callable[[int], None],
) -> None:
    """Also call ``keyframe_request()`` on PLI/FIR and ``bitrate(bps)`` on REMB for this sender.

    aiortc still handles them itself (its encoder, when it encodes, obeys them).
    """
    original = sender._handle_rtcp_packet

    async def _handle_rtcp_packet(packet: Any) -> None:
        await original(packet)
        if isinstance(packet, RtcpPsfbPacket):
            if packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                keyframe_request()
            elif packet.fmt == RTCP_PSFB_APP:
                try:
                    bps, ssrcs = unpack_remb_fci(packet.fci)
                except ValueError:
                    return
                if sender._ssrc in ssrcs:
                    bitrate(bps)

    sender._handle_rtcp_packet = _handle_rtcp_packet  # type: ignore[method-assign]


def on_sender_codec(sender: RTCRtpSender, callback: Callable[[RTCRtpCodecParameters], None]) -> None:
    """Call ``callback(codec)`` with the codec the sender will send, once negotiation starts it."""
    original = sender.send

    async def send(parameters: Any) -> None:
        if parameters.codecs:
            callback(parameters.codecs[0])
        await original(parameters)

    sender.send = send  # type: ignore[method-assign]


# -- test clients -------------------------------------------------------------------------------


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


def encoder_target_bitrate(sender: RTCRtpSender) -> Optional[int]:
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


class PortRangeExhausted(OSError):
    """Every UDP port of the configured range is taken on an address."""


def bind_udp_in_range(address: str, port_range: tuple[int, int]) -> socket.socket:
    """A UDP socket bound to ``address`` on a free port of ``port_range`` (inclusive)."""
    low, high = port_range
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    count = high - low + 1
    first = random.randrange(count)  # spread concurrent servers and reuse over the range
    for step in range(count):
        port = low + (first + step) % count
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((address, port))
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                continue
            raise
        return sock
    raise PortRangeExhausted(errno.EADDRINUSE, f"no free UDP port in {low}-{high} on {address}")


async def _gather_in_range(
    connection: Any,
    original: Any,
    component: int,
    addresses: Sequence[str],
    port_range: tuple[int, int],
    timeout: int,
) -> list[Any]:
    """aioice's ``Connection.get_component_candidates``, with host sockets bound within a range."""
    loop = asyncio.get_running_loop()
    candidates: list[Any] = []
    host_protocols = []
    try:
        for address in addresses:
            sock = bind_udp_in_range(address, port_range)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, aioice.turn.UDP_SOCKET_BUFFER_SIZE)
            _, protocol = await loop.create_datagram_endpoint(
                lambda: aioice.ice.StunProtocol(connection), sock=sock
            )
            host_protocols.append(protocol)
            host, port = protocol.transport.get_extra_info("sockname")[:2]
            protocol.local_candidate = aioice.Candidate(
                foundation=aioice.candidate.candidate_foundation("host", "udp", host),
                component=component,
                transport="udp",
                priority=aioice.candidate.candidate_priority(component, "host"),
                host=host,
                port=port,
                type="host",
            )
            candidates.append(protocol.local_candidate)
    finally:
        # Owned by the connection from here on: closed with it, even if a later bind failed.
        connection._protocols += host_protocols

    tasks = []
    if connection.stun_server:
        tasks += [
            asyncio.ensure_future(aioice.ice.server_reflexive_candidate(p, connection.stun_server))
            for p in host_protocols
            if ipaddress.ip_address(p.local_candidate.host).version == 4
        ]
    # With no addresses, aioice's own gathering does only what is left: the TURN allocation.
    relayed = asyncio.ensure_future(original(component=component, addresses=[], timeout=timeout))
    if tasks:
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        candidates += [t.result()[0] for t in done if t.exception() is None]
    candidates += await relayed
    return candidates


def remote_addresses(pc: RTCPeerConnection) -> set[str]:
    """Every remote address ICE knows on ``pc``: signalled candidates and peer-reflexive ones."""
    found: set[str] = set()
    for connection in _ice_connections(pc):
        found.update(c.host for c in connection.remote_candidates)
        found.update(pair.remote_candidate.host for pair in connection._check_list)
    return found


def selected_pairs(pc: RTCPeerConnection) -> list[dict[str, Any]]:
    """The candidate pairs ICE chose on ``pc``: local candidate type, remote address and type."""
    chosen = []
    for connection in _ice_connections(pc):
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
async def close_peer_connection(pc: RTCPeerConnection) -> None:
    """``pc.close()``, also after an offer that was only half applied.

    aiortc 1.16's ``close()`` raises AttributeError when ``setRemoteDescription`` failed after creating
    a transceiver but before giving it a transport; it then leaves the other transports (UDP sockets)
    open and its "closed" future unresolved. Finish the job here.
    """
    connecting = _connect_tasks(pc)
    try:
        await pc.close()
    except AttributeError:
        await _finish_close(pc)
    if connecting:
        # Closing while aiortc's connect task is between two awaits makes that task fail with
        # InvalidStateError, logged as "Task exception was never retrieved": collect it here.
        await asyncio.wait(connecting, timeout=2.0)
        for task in connecting:
            if task.done() and not task.cancelled():
                task.exception()


def _connect_tasks(pc: RTCPeerConnection) -> list[asyncio.Task]:
    """aiortc's pending ``RTCPeerConnection.__connect`` tasks for ``pc``."""
    found = []
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        if (
            frame is not None
            and getattr(coro, "__qualname__", "") == "RTCPeerConnection.__connect"
            and frame.f_locals.get("self") is pc
        ):
            found.append(task)
    return found


async def _finish_close(pc: RTCPeerConnection) -> None:
    for transceiver in pc.getTransceivers():
        for transport in (transceiver.receiver.transport, transceiver.sender.transport):
            if transport is None:
                continue
            await transport.stop()
            await transport.transport.stop()
    pc.remove_all_listeners()
    closed = getattr(pc, "_RTCPeerConnection__isClosed", None)
    if isinstance(closed, asyncio.Future) and not closed.done():
        closed.set_result(True)
