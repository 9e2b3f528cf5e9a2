"""The media object model: sources (what a participant publishes) and sinks (what they are sent).

A :class:`Source` is one participant's inbound track, the "up track" or "producer": it is known by a
value, :class:`SourceId` (participant id + kind), never by object identity, so that a source living
in another process can stand behind the same interface. A source carries its codec, can be asked for
a keyframe, given a bitrate cap, and asked for the publisher's current picture.

A :class:`Sink` is a participant's outbound track, the "down track" or "consumer"
(:class:`sfu.media.outbound.OutboundTrack`). The one verb that links them is
``outbound.connect(source)``; it calls :meth:`Source.attach` / :meth:`Source.detach` itself, and the
source then hands items to :meth:`Sink.deliver`, tagged with its id.

Imports nothing of aiortc at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import av
    from aiortc import RTCRtpCodecParameters

KINDS = ("audio", "video")


@dataclass(frozen=True)
class SourceId:
    """Which participant's media, and which kind ("audio" or "video")."""

    participant: str
    kind: str

    def __str__(self) -> str:
        return f"{self.participant}/{self.kind}"


class Sink(Protocol):
    """What a source hands its media to (a participant's outbound track)."""

    def accepts(self, codec: RTCRtpCodecParameters) -> bool:
        """Whether encoded frames of ``codec`` can be sent as they are (otherwise: decoded items)."""
        ...

    def deliver(self, source: SourceId, item: object) -> None:
        """An item (encoded frame, picture or sound) from ``source``; dropped unless connected to it."""
        ...


class Source(Protocol):
    """One participant's inbound track of one kind."""

    @property
    def id(self) -> SourceId: ...

    @property
    def kind(self) -> str: ...

    @property
    def codec(self) -> RTCRtpCodecParameters | None:
        """The codec the publisher sends with: known once negotiated or once media arrived."""
        ...

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe (rate-limited; nothing to do where media is decoded)."""
        ...

    def set_bitrate_cap(self, bps: int | None) -> None:
        """Ask the publisher to send at most ``bps`` (``None``: no cap from this watcher)."""
        ...

    async def picture(self, timeout: float) -> av.VideoFrame | None:
        """The publisher's current picture, decoded; ``None`` for audio or after ``timeout`` s."""
        ...

    def attach(self, sink: Sink) -> None:
        """Hand media to ``sink`` from now on (called by the sink's ``connect`` only)."""
        ...

    def detach(self, sink: Sink) -> None:
        """Stop handing media to ``sink`` (called by the sink's ``connect`` only)."""
        ...


class SourceDirectory(Protocol):
    """Finds a participant's sources by id (e.g. participants served by another process)."""

    def sources(self, participant: str) -> dict[str, Source]:
        """The participant's sources by kind; empty if this directory does not know them."""
        ...
