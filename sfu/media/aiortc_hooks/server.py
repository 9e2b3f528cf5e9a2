"""Hooks the server's media path needs: receiver taps, codecs, RTCP, decoding on demand, SDP.

Forwarding encoded media needs six things aiortc 1.16 has no public API for:

1. taking complete encoded frames off a receiver before its decoder (replace its jitter buffer),
2. knowing which codec each inbound payload type is and what a sender negotiated,
3. sending RTCP PLI (keyframe request) and REMB (bitrate cap) from a receiver,
4. seeing PLI/FIR/REMB that arrive on a sender (aiortc only feeds them to its own encoder),
5. putting the preferred codec first in the answer,
6. decoding an encoded frame outside a receiver (a codec mismatch, a picture on demand).

Every forwarding mode also forces keyframes on a sender's encoder after a partner switch and reads
client offers with aiortc's SDP parser (:func:`outline_offer`) before aiortc applies them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import av
from aiortc import (
    RTCRtpCodecParameters,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
)
from aiortc.codecs import get_decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RtcpPsfbPacket,
    RtpPacket,
    pack_remb_fci,
    unpack_remb_fci,
)
from aiortc.sdp import SessionDescription

from .introspect import code_names, missing_callables, unused_names

log = logging.getLogger(__name__)


def problems() -> list[str]:
    """What every forwarding mode needs but the installed aiortc lacks (empty: all present)."""
    found = missing_callables(RTCRtpSender, ("_send_keyframe",), "aiortc.RTCRtpSender")
    found += missing_callables(SessionDescription, ("parse",), "aiortc.sdp.SessionDescription")
    return found


def encoded_problems() -> list[str]:
    """What encoded forwarding needs but the installed aiortc lacks (empty: all present)."""
    found = unused_names(
        RTCRtpReceiver.__init__,
        ("_RTCRtpReceiver__jitter_buffer", "_RTCRtpReceiver__codecs", "_RTCRtpReceiver__rtcp_ssrc"),
        "aiortc.RTCRtpReceiver.",
    )
    found += unused_names(
        getattr(RTCRtpReceiver, "_handle_rtp_packet", None),
        ("_RTCRtpReceiver__jitter_buffer", "add", "_data"),
        "aiortc.RTCRtpReceiver._handle_rtp_packet uses ",
    )
    found += missing_callables(
        RTCRtpReceiver, ("_send_rtcp", "_send_rtcp_pli", "_handle_rtp_packet", "_RTCRtpReceiver__stop_decoder"),
        "aiortc.RTCRtpReceiver",
    )
    found += missing_callables(RTCRtpSender, ("_handle_rtcp_packet", "send"), "aiortc.RTCRtpSender")
    found += unused_names(RTCRtpTransceiver.__init__, ("_codecs",), "aiortc.RTCRtpTransceiver.")
    found += unused_names(
        RTCRtpSender.__init__, ("_RTCRtpSender__encoder", "_ssrc"), "aiortc.RTCRtpSender."
    )
    if "pack" not in code_names(getattr(RTCRtpSender, "_next_encoded_frame", None)):
        found.append("aiortc.RTCRtpSender._next_encoded_frame packs pre-encoded data")
    return found


# -- senders ---------------------------------------------------------------------------------------


def force_keyframe(sender: RTCRtpSender) -> None:
    """Make the sender's encoder emit a keyframe for the next frame it encodes."""
    sender._send_keyframe()


def on_sender_codec(sender: RTCRtpSender, callback: Callable[[RTCRtpCodecParameters], None]) -> None:
    """Call ``callback(codec)`` with the codec the sender will send, once negotiation starts it."""
    original = sender.send

    async def send(parameters: Any) -> None:
        if parameters.codecs:
            callback(parameters.codecs[0])
        await original(parameters)

    sender.send = send  # type: ignore[method-assign]


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
        relay_feedback(sender, packet, keyframe_request, bitrate)

    sender._handle_rtcp_packet = _handle_rtcp_packet  # type: ignore[method-assign]


def relay_feedback(
    sender: RTCRtpSender, packet: Any, keyframe_request: Callable[[], None], bitrate: Callable[[int], None]
) -> None:
    """A watcher's PLI/FIR (``keyframe_request()``) or REMB for this sender (``bitrate(bps)``)."""
    if not isinstance(packet, RtcpPsfbPacket):
        return
    if packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
        keyframe_request()
    elif packet.fmt == RTCP_PSFB_APP:
        try:
            bps, ssrcs = unpack_remb_fci(packet.fci)
        except ValueError:
            return
        if sender._ssrc in ssrcs:
            bitrate(bps)


# -- codecs ----------------------------------------------------------------------------------------


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    """The transceiver's codecs in answer order (after ``setRemoteDescription``)."""
    return list(transceiver._codecs)


def prefer_codecs(transceiver: RTCRtpTransceiver, order: Sequence[str]) -> None:
    """After ``setRemoteDescription``: put codecs named in ``order`` (mime types) first.

    The answer lists codecs in this order and both browsers and aiortc send with the first one, so
    every participant who allows it ends up on the same codec and their media can be forwarded as is.
    """
    codecs = list(transceiver._codecs)
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
    transceiver._codecs = ordered


def receiver_codec(receiver: RTCRtpReceiver, payload_type: int) -> RTCRtpCodecParameters | None:
    """The codec an inbound payload type stands for (``None`` if it was not negotiated)."""
    codec: RTCRtpCodecParameters | None = receiver._RTCRtpReceiver__codecs.get(payload_type)  # type: ignore[attr-defined]
    return codec


#: Decodes one complete encoded frame (bitstream, RTP timestamp) into zero or more pictures/sounds.
Decode = Callable[[bytes, int], list[av.frame.Frame]]


def decoder_for(codec: RTCRtpCodecParameters) -> Decode:
    """A new decoder for ``codec`` (aiortc's own), fed whole encoded frames. Not thread-safe: use
    each from one thread at a time."""
    decoder = get_decoder(codec)

    def decode(data: bytes, timestamp: int) -> list[av.frame.Frame]:
        return list(decoder.decode(JitterFrame(data, timestamp)))

    return decode


# -- receivers: the frame tap and RTCP ---------------------------------------------------------------


class FrameTap(Protocol):
    """What replaces a receiver's jitter buffer: takes depayloaded packets, returns no frame."""

    def add(self, packet: RtpPacket) -> tuple[bool, None]: ...


def tap_receiver(receiver: RTCRtpReceiver, tap: FrameTap) -> None:
    """Route the receiver's depayloaded packets to ``tap`` instead of its jitter buffer.

    Call from ``pc.on("track")`` (before RTP flows). The tap returns no frame, so aiortc's decoder
    thread for this receiver would never decode anything: it is ended as soon as ``receive`` has
    started it (the receiver's remote track ends with it; nothing reads that track: frames come
    from the tap).
    """
    receiver._RTCRtpReceiver__jitter_buffer = tap  # type: ignore[attr-defined]
    original = receiver.receive

    async def receive(parameters: Any) -> None:
        await original(parameters)
        receiver._RTCRtpReceiver__stop_decoder()  # type: ignore[attr-defined]

    receiver.receive = receive  # type: ignore[method-assign]


def decoder_running(receiver: RTCRtpReceiver) -> bool:
    """Whether aiortc's decoder thread of ``receiver`` runs."""
    thread: threading.Thread | None = receiver._RTCRtpReceiver__decoder_thread  # type: ignore[attr-defined]
    return thread is not None and thread.is_alive()


def packet_data(packet: RtpPacket) -> bytes:
    """The depayloaded codec bitstream of a packet handed to a tap."""
    data: bytes = packet._data  # type: ignore[attr-defined]
    return data


def _spawn(coro: Any) -> None:
    task = asyncio.ensure_future(coro)
    task.add_done_callback(_ignore_result)


def _ignore_result(task: asyncio.Future[Any]) -> None:
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


def rewrite_receiver_remb(receiver: RTCRtpReceiver, rewrite: Callable[[int], int | None]) -> None:
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


# -- SDP -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaOutline:
    """One media section of an offer, as far as the server's checks need it."""

    kind: str
    mid: str | None
    has_ice_credentials: bool
    has_fingerprint: bool


@dataclass(frozen=True)
class OfferOutline:
    media: tuple[MediaOutline, ...]
    bundles: tuple[tuple[str, ...], ...]  #: the media ids of each BUNDLE group


def outline_offer(sdp: str) -> OfferOutline:
    """What aiortc's own SDP parser reads in ``sdp``; ``ValueError`` if it cannot read it."""
    try:
        description = SessionDescription.parse(sdp)
    except Exception as exc:  # the parser raises many types on garbage  # noqa: BLE001
        raise ValueError(f"unreadable SDP ({type(exc).__name__})") from None
    media = tuple(
        MediaOutline(
            kind=section.kind,
            mid=section.rtp.muxId,
            has_ice_credentials=bool(
                section.ice is not None and section.ice.usernameFragment and section.ice.password
            ),
            has_fingerprint=bool(section.dtls is not None and section.dtls.fingerprints),
        )
        for section in description.media
    )
    bundles = tuple(
        tuple(str(item) for item in group.items) for group in description.group if group.semantic == "BUNDLE"
    )
    return OfferOutline(media, bundles)
