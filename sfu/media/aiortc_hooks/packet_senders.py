"""Hooks on a watcher's senders for packet forwarding: its own packets, its feedback, its statistics.

The sender's own packets (grey placeholder, transcoded pictures) are taken from its transport's
``_send_rtp`` so that one rewriter numbers everything on its SSRC; NACKs from the watcher are
answered by the packet path, PLI/FIR and REMB reported to callbacks; ``getStats`` counts what the
packet path sent. aiortc 1.16 has no public API for any of it: :func:`problems` lists what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiortc import RTCDtlsTransport, RTCRtpSender
from aiortc.rtp import (
    RTCP_RTPFB_NACK,
    RtcpRtpfbPacket,
)

from ..rtp.legs import OutboundLeg
from .introspect import code_names, missing_callables, unused_names
from .packets import InboundTap, codec_value
from .server import relay_feedback


def problems() -> list[str]:
    """What the sender hooks need but the installed aiortc lacks (empty: all present)."""
    found = missing_callables(
        RTCRtpSender, ("send", "_handle_rtcp_packet", "_send_keyframe", "getStats"), "aiortc.RTCRtpSender"
    )
    found += unused_names(
        RTCRtpSender.__init__, ("_RTCRtpSender__transport", "_RTCRtpSender__encoder", "_ssrc", "_rtx_ssrc"),
        "aiortc.RTCRtpSender."
    )
    run_rtp = code_names(getattr(RTCRtpSender, "_run_rtp", None))
    if "_send_rtp" not in run_rtp or "transport" not in run_rtp:
        found.append("aiortc.RTCRtpSender._run_rtp sends through transport._send_rtp")
    return found


def outbound_leg(sender: RTCRtpSender, parameters: Any) -> OutboundLeg:
    """What ``sender`` was negotiated to send (``parameters``: what ``send`` is called with)."""
    primary = parameters.codecs[0]
    rtx_pt = next(
        (int(c.payloadType) for c in parameters.codecs
         if c.mimeType.lower().endswith("/rtx") and c.parameters.get("apt") == primary.payloadType),
        None,
    )
    return OutboundLeg(
        kind=sender.kind,
        codec=codec_value(primary),
        ssrc=sender._ssrc,
        rtx_ssrc=sender._rtx_ssrc if rtx_pt is not None else None,
        rtx_payload_type=rtx_pt,
        mid=parameters.muxId,
        extensions={e.uri: e.id for e in parameters.headerExtensions},
        nack=any(f.type == "nack" and not f.parameter for f in primary.rtcpFeedback),
    )


# -- the sender's own packets and its feedback ------------------------------------------------------


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
        on_start(outbound_leg(sender, parameters), real)
        sender._RTCRtpSender__transport = _SenderTransport(real, on_local_rtp, on_rtcp_out)  # type: ignore[attr-defined]
        InboundTap.of(real).feedback_to(sender._ssrc, _SenderFeedback(sender, on_nack, on_keyframe_request, on_remb))
        await original_send(parameters)

    sender.send = send  # type: ignore[method-assign]
    original_rtcp = sender._handle_rtcp_packet

    async def _handle_rtcp_packet(packet: Any) -> None:
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            on_nack(list(packet.lost))
            return
        await original_rtcp(packet)
        relay_feedback(sender, packet, on_keyframe_request, on_remb)

    sender._handle_rtcp_packet = _handle_rtcp_packet  # type: ignore[method-assign]


class _SenderFeedback:
    """The watcher's feedback about a sender, taken straight off its transport (see
    :class:`~.packets.InboundTap`): as the hooked ``_handle_rtcp_packet`` does with it, without
    aiortc's RTCP queue, parsing and tasks. aiortc's own encoder (placeholder, transcoding) still
    gets its keyframe requests and bitrate."""

    def __init__(self, sender: RTCRtpSender, on_nack: Callable[[list[int]], None],
                 on_keyframe_request: Callable[[], None], on_remb: Callable[[int], None]) -> None:
        self._sender = sender
        self.on_nack = on_nack
        self._keyframe_request = on_keyframe_request
        self._remb = on_remb

    def on_keyframe_request(self) -> None:
        self._sender._send_keyframe()
        self._keyframe_request()

    def on_remb(self, bitrate: int) -> None:
        encoder = self._sender._RTCRtpSender__encoder  # type: ignore[attr-defined]
        if encoder is not None and hasattr(encoder, "target_bitrate"):
            encoder.target_bitrate = bitrate
        self._remb(bitrate)


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
