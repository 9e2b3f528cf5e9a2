"""What one leg (one participant's connection, one media kind) negotiated, as plain values.

The publisher's inbound leg and the watcher's outbound leg may use different payload types and
header extension ids for the same codec and extension: packets are mapped from one to the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


@dataclass(frozen=True)
class Codec:
    payload_type: int
    mime: str  #: lower case, e.g. "video/vp8"
    clock_rate: int
    packetization_mode: str = "0"  #: H.264 only
    #: For an RTX payload type: the payload type it repairs.
    apt: int | None = None
    #: Whether this is a retransmission payload type (from ``mime``; read per packet, so kept).
    is_rtx: bool = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_rtx", self.mime.endswith("/rtx"))

    def same_as(self, other: Codec) -> bool:
        """Whether packets of ``self`` can be sent unchanged on a leg negotiated for ``other``."""
        if self.mime != other.mime or self.clock_rate != other.clock_rate:
            return False
        return self.mime != "video/h264" or self.packetization_mode == other.packetization_mode


@dataclass
class InboundLeg:
    """A publisher's leg: what it sends to the server."""

    kind: str
    codecs: dict[int, Codec]
    #: Header extension ids by URI.
    extensions: dict[str, int] = field(default_factory=dict)
    #: Signalled media SSRC -> its RTX SSRC (may be empty: then learnt from payload types).
    rtx_ssrcs: dict[int, int] = field(default_factory=dict)

    def media_codec(self, payload_type: int) -> Codec | None:
        codec = self.codecs.get(payload_type)
        return None if codec is None or codec.is_rtx else codec


@dataclass
class OutboundLeg:
    """A watcher's leg: what the server sends to it on one sender."""

    kind: str
    codec: Codec  #: the codec the sender sends (the first of the answer)
    ssrc: int
    rtx_ssrc: int | None = None
    rtx_payload_type: int | None = None
    mid: str | None = None
    extensions: dict[str, int] = field(default_factory=dict)
    nack: bool = False


def payload_type_map(inbound: InboundLeg, outbound: OutboundLeg) -> dict[int, int]:
    """Inbound media payload types that can be forwarded on ``outbound``, and their outbound PT."""
    return {
        pt: outbound.codec.payload_type
        for pt, codec in inbound.codecs.items()
        if not codec.is_rtx and codec.same_as(outbound.codec)
    }
