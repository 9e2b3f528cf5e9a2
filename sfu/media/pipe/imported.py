"""Importing: a publisher served by another process, as a :class:`~sfu.media.source.Source` here.

An :class:`ImportedSource` stands for one kind of a remote publisher's media. Towards the outbound
packet tracks (:mod:`sfu.media.packet_tracks`) it behaves like a local
:class:`~sfu.media.packet_feed.PacketFeed`: it exposes the publisher's leg as ``leg``, asks its sink
for a route (``packet_route``) and hands each packet to the watcher's outbound stream tagged with its
:class:`~sfu.media.source.SourceId`. So a watcher's SSRC, sequence numbers, timestamps and VP8
picture ids continue across switches between local and piped partners, and nothing is forwarded
after a switch until the new partner's first keyframe, exactly as for a local partner.

When the watcher's leg has no codec in common with the publisher's, the packets are assembled into
frames, decoded here and handed to the watcher's track as pictures (:mod:`.pictures`): the watcher's
encoder sends them in its own codec, as for a local partner with another codec.

What the watcher's side asks of the publisher goes back through the pipe as feedback: keyframe
requests, bitrate caps (the watcher's REMB), attach/detach, and NACKs of packets the pipe lost
(tracked here on the publisher's own sequence numbers, answered from the exporter's history).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiortc import RTCRtpCodecParameters

from ..packet_feed import PacketRoute, PacketSink
from ..rtp.header import one_byte_extension, parse
from ..rtp.legs import AUDIO_LEVEL_URI, InboundLeg
from ..rtp.loss import UpstreamLoss
from ..source import Sink, SourceId
from .messages import Feedback
from .pictures import ImportedPictures

if TYPE_CHECKING:
    import av

#: A watcher's estimate goes to the exporter at most this often (seconds; browsers and aiortc send
#: REMB on every packet while they see congestion), unless it asks for much less than the last one.
CAP_INTERVAL = 0.25
#: An estimate below this share of the last one sent goes at once.
CAP_DROP = 0.9


class ImportedSource:
    """One kind of a remote publisher's media, fed by the pipe."""

    def __init__(
        self, source_id: SourceId, feedback: Callable[[Feedback], None], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.id = source_id
        self._feedback = feedback
        self._clock = clock
        self._cap_sent: tuple[int | None, float] | None = None  #: the last cap sent, and when
        self.leg: InboundLeg | None = None
        self.sink: Sink | None = None
        self._route: PacketRoute | None = None
        self._level_id = 0
        self._codecs: dict[int, RTCRtpCodecParameters] = {}
        self._last_pt: int | None = None
        #: Losses on the pipe, on the publisher's sequence numbers (video only: audio is not NACKed).
        self.loss = UpstreamLoss() if source_id.kind == "video" else None
        self.packets = 0
        self.octets = 0
        self.last_media_at: float | None = None
        #: Set while the watcher takes pictures, not packets (no codec in common).
        self.pictures: ImportedPictures | None = None

    @property
    def kind(self) -> str:
        return self.id.kind

    @property
    def codec(self) -> RTCRtpCodecParameters | None:
        """The codec of the last packet received (``None`` before the first)."""
        if self._last_pt is None:
            return None
        return self._codecs.get(self._last_pt)

    # -- what the exporter says ------------------------------------------------------------------
    def describe(self, leg: InboundLeg) -> bool:
        """The publisher's leg as the exporter describes it; True if it changed."""
        if self.leg is not None and self.leg == leg:
            return False
        self.leg = leg
        self._level_id = leg.extensions.get(AUDIO_LEVEL_URI, 0) if self.kind == "audio" else 0
        self._codecs = {
            pt: RTCRtpCodecParameters(mimeType=_mime_case(c.mime), clockRate=c.clock_rate, payloadType=pt)
            for pt, c in leg.codecs.items()
            if not c.is_rtx
        }
        if self.loss is not None:
            self.loss.reset()
        self.reroute()
        return True

    def on_packet(self, packet: bytes, now: float) -> bool:
        """One packet of the publisher, through the pipe; False if it is not an RTP packet."""
        view = parse(packet)
        if view is None:
            return False
        self.packets += 1
        self.octets += len(packet)
        self.last_media_at = now
        loss = self.loss
        if loss is not None and not loss.add(view.sequence, now):
            return True  # a duplicate
        self._last_pt = view.payload_type
        route = self._route
        if route is not None:
            payload_type = route[1].get(view.payload_type)
            if payload_type is not None:
                level = one_byte_extension(view, self._level_id) if self._level_id else None
                route[0].forward(self.id, view, payload_type, now, level)
        elif self.pictures is not None:
            self.pictures.add(view, now)
        if loss is not None and loss.missing:
            report = loss.poll(now)
            if report.nack:
                self._feedback(Feedback(self.id.participant, self.kind, "nack", sequences=tuple(report.nack)))
            if report.keyframe and self.sink is not None:
                self.request_keyframe()
        return True

    # -- the Source interface --------------------------------------------------------------------
    def reroute(self) -> None:
        """Ask the sink again where packets go (its stream started, or the leg became known)."""
        sink = self.sink
        packets = isinstance(sink, PacketSink)
        self._route = sink.packet_route(self.leg) if packets else None  # type: ignore[union-attr]
        # No route although the watcher's stream runs: no codec in common, pictures it is.
        transcode = sink is not None and self.leg is not None and self._route is None and (
            not packets or getattr(sink, "stream", None) is not None)
        if transcode and self.pictures is None:
            self.pictures = ImportedPictures(self.kind, self._codecs.get, self._deliver, self.request_keyframe)
        elif not transcode:
            self._stop_pictures()
        if packets:
            sink.reroute()  # type: ignore[union-attr]

    def _deliver(self, picture: av.frame.Frame) -> None:
        sink = self.sink
        if sink is not None:
            sink.deliver(self.id, picture)

    def _stop_pictures(self) -> None:
        pictures, self.pictures = self.pictures, None
        if pictures is not None:
            pictures.close()

    def attach(self, sink: Sink) -> None:
        self.sink = sink
        self._cap_sent = None
        self.reroute()
        self._feedback(Feedback(self.id.participant, self.kind, "attach"))

    def detach(self, sink: Sink) -> None:
        if self.sink is sink:
            self.sink = None
            self._route = None
            self._stop_pictures()
            self._feedback(Feedback(self.id.participant, self.kind, "detach"))

    def request_keyframe(self) -> None:
        if self.kind == "video":
            self._feedback(Feedback(self.id.participant, "video", "keyframe"))

    def set_bitrate_cap(self, bps: int | None) -> None:
        if self.kind != "video":
            return
        now = self._clock()
        last = self._cap_sent
        if last is not None and now - last[1] < CAP_INTERVAL and last[0] == bps:
            return
        if last is not None and now - last[1] < CAP_INTERVAL and bps is not None and last[0] is not None:
            if bps >= last[0] * CAP_DROP:
                return
        self._cap_sent = (bps, now)
        self._feedback(Feedback(self.id.participant, "video", "cap", bps=bps))

    async def picture(self, timeout: float) -> av.VideoFrame | None:
        """Always ``None``: pictures are taken in the publisher's own process (moderation samples
        publishers where they are served), never through the pipe."""
        return None

    def close(self) -> None:
        """The import was forgotten: nothing more is forwarded."""
        self._route = None
        self.sink = None
        self._stop_pictures()


def _mime_case(mime: str) -> str:
    kind, _, name = mime.partition("/")
    return f"{kind}/{name if name == 'opus' else name.upper()}"
