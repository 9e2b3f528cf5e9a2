"""Who receives whose media, by participant id.

Signaling tells the router "participant W now watches participant P" with ids (plain values), never
with media objects. The router resolves P's id to P's sources — local ones from P's
:class:`~sfu.media.peer.PeerMedia`, or, for participants it does not hold, from another
:class:`~sfu.media.source.SourceDirectory` (e.g. participants served by another process) — and
connects each to W's outbound track of the same kind. A source that appears later (P's track arrives
after W started watching) is connected as soon as it does.
"""

from __future__ import annotations

from collections.abc import Iterator

from .peer import PeerMedia
from .source import Source, SourceDirectory


class MediaRouter:
    """Every local participant's media, keyed by participant id; connects publishers to watchers."""

    def __init__(self, elsewhere: SourceDirectory | None = None) -> None:
        self._media: dict[str, PeerMedia] = {}
        self._watching: dict[str, str] = {}  #: watcher id -> publisher id
        self._elsewhere = elsewhere

    def add(self, participant: str, media: PeerMedia) -> None:
        """Hold ``participant``'s media; its sources are known by this id from now on."""
        media.participant = participant
        media.on_source = self._published
        self._media[participant] = media

    def discard(self, participant: str) -> PeerMedia | None:
        """Forget a participant, and disconnect whoever still watched them (their own media is
        closed by whoever owns it)."""
        media = self._media.pop(participant, None)
        if media is not None:
            media.on_source = None
        self._watching.pop(participant, None)
        for watcher in [w for w, p in self._watching.items() if p == participant]:
            self.connect(watcher, None)
        return media

    def get(self, participant: str) -> PeerMedia | None:
        return self._media.get(participant)

    def __iter__(self) -> Iterator[PeerMedia]:
        return iter(list(self._media.values()))

    def watching(self, watcher: str) -> str | None:
        """Whose media ``watcher`` is sent (``None``: nobody's)."""
        return self._watching.get(watcher)

    def sources(self, participant: str) -> dict[str, Source]:
        """``participant``'s sources by kind, wherever they live (empty: none known yet)."""
        media = self._media.get(participant)
        if media is not None:
            return dict(media.sources)
        if self._elsewhere is not None:
            return self._elsewhere.sources(participant)
        return {}

    def connect(self, watcher: str, publisher: str | None) -> None:
        """Send ``publisher``'s media to ``watcher`` from now on (``None``: nobody's)."""
        media = self._media.get(watcher)
        if media is None:
            return
        if publisher is None:
            self._watching.pop(watcher, None)
            found: dict[str, Source] = {}
        else:
            self._watching[watcher] = publisher
            found = self.sources(publisher)
        for kind, track in media.outbound.items():
            track.connect(found.get(kind))

    def _published(self, source: Source) -> None:
        """A local participant's track arrived: connect it to whoever already watches them."""
        for watcher, publisher in list(self._watching.items()):
            if publisher != source.id.participant:
                continue
            media = self._media.get(watcher)
            track = media.outbound.get(source.kind) if media is not None else None
            if track is not None:
                track.connect(source)
