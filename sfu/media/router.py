"""Who receives whose media, by participant id.

Signaling tells the router "participant W now watches participant P" with ids (plain values), never
with media objects. The router resolves P's id to P's sources — local ones from P's
:class:`~sfu.media.peer.PeerMedia`, or, for participants it does not hold, from another
:class:`~sfu.media.source.SourceDirectory` (e.g. participants served by another process) — and
connects each to W's outbound track of the same kind. A source that appears later (P's track arrives
after W started watching) is connected as soon as it does.

A publisher can be *hidden* (:meth:`MediaRouter.hide`): whoever watches them gets the neutral
placeholder instead of their video (sound continues), now and for every later watcher until shown
again, without renegotiation. :attr:`MediaRouter.on_watch` is told of every change of who watches
whom before it is carried out, so an observer may hide the publisher first (a new partner's picture
checked before it is shown). The router also says whether a participant's video reaches the server
(:meth:`MediaRouter.video_live`, :meth:`MediaRouter.when_video`) and fetches their current picture.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

from .peer import PeerMedia
from .source import Source, SourceDirectory

if TYPE_CHECKING:
    import av

#: Video counts as reaching the server while its last frame arrived at most this long ago (seconds).
VIDEO_FRESH = 2.0


class RouterObserver(Protocol):
    """Told what happens to local participants' media (e.g. the media pipe, which exports them)."""

    def source_added(self, source: Source) -> None:
        """A local participant's track arrived."""
        ...

    def participant_discarded(self, participant: str) -> None:
        """A participant was discarded (their media is closed by its owner)."""
        ...

    def hidden_changed(self, publisher: str, hidden: bool) -> None:
        """``publisher``'s video was hidden or shown again (:meth:`MediaRouter.hide`)."""
        ...


class MediaRouter:
    """Every local participant's media, keyed by participant id; connects publishers to watchers."""

    def __init__(self, elsewhere: SourceDirectory | None = None) -> None:
        self._media: dict[str, PeerMedia] = {}
        self._watching: dict[str, str] = {}  #: watcher id -> publisher id
        self._elsewhere = elsewhere
        self._hidden: set[str] = set()  #: publishers whose video nobody is shown
        #: Listeners for video of participants whose video source does not exist yet, with the
        #: cancel functions they get once it does.
        self._video_listeners: dict[str, list[tuple[Callable[[], None], list[Callable[[], None]]]]] = {}
        #: Called with (watcher, publisher or None) before the watcher's tracks are switched.
        self.on_watch: Callable[[str, str | None], None] | None = None
        self._observers: list[RouterObserver] = []

    def observe(self, observer: RouterObserver) -> None:
        """Tell ``observer`` of local tracks arriving, participants discarded, publishers hidden."""
        self._observers.append(observer)

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
        if self._watching.pop(participant, None) is not None and self.on_watch is not None:
            self.on_watch(participant, None)
        for watcher in [w for w, p in self._watching.items() if p == participant]:
            self.connect(watcher, None)
        self._hidden.discard(participant)
        self._video_listeners.pop(participant, None)
        for observer in list(self._observers):
            observer.participant_discarded(participant)
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
        if self.on_watch is not None:
            self.on_watch(watcher, publisher)
        if publisher is None:
            self._watching.pop(watcher, None)
            found: dict[str, Source] = {}
        else:
            self._watching[watcher] = publisher
            found = self.sources(publisher)
        hidden = publisher in self._hidden
        for kind, track in media.outbound.items():
            track.connect(found.get(kind), hidden=hidden)

    # -- hiding ------------------------------------------------------------------------------------
    def hide(self, publisher: str, hidden: bool) -> None:
        """Show ``publisher``'s watchers the placeholder instead of their video (``True``), now and
        whenever someone starts watching them, or their video again (``False``)."""
        if hidden:
            self._hidden.add(publisher)
        else:
            self._hidden.discard(publisher)
        for watcher, watched in list(self._watching.items()):
            if watched != publisher:
                continue
            media = self._media.get(watcher)
            track = media.outbound.get("video") if media is not None else None
            if track is not None:
                track.set_hidden(hidden)
        for observer in list(self._observers):
            observer.hidden_changed(publisher, hidden)

    def is_hidden(self, publisher: str) -> bool:
        return publisher in self._hidden

    # -- the publisher's video -----------------------------------------------------------------------
    async def picture(self, participant: str, timeout: float) -> av.VideoFrame | None:
        """``participant``'s current picture (see :meth:`Source.picture`); ``None`` without video."""
        source = self.sources(participant).get("video")
        return None if source is None else await source.picture(timeout)

    def has_video(self, participant: str) -> bool:
        """Whether ``participant`` publishes a video track at all."""
        return "video" in self.sources(participant)

    def video_live(self, participant: str, now: float, fresh: float = VIDEO_FRESH) -> bool:
        """Whether a local participant's video reached the server within ``fresh`` seconds of
        ``now`` (``time.monotonic()``)."""
        media = self._media.get(participant)
        feed = media.sources.get("video") if media is not None else None
        return feed is not None and feed.last_media_at is not None and now - feed.last_media_at <= fresh

    def when_video(self, participant: str, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` once, when a local participant's video next arrives (even if their video
        track is not negotiated yet); returns a function that cancels it."""
        media = self._media.get(participant)
        feed = media.sources.get("video") if media is not None else None
        if feed is not None:
            return feed.when_media(listener)
        entry: tuple[Callable[[], None], list[Callable[[], None]]] = (listener, [])
        self._video_listeners.setdefault(participant, []).append(entry)

        def cancel() -> None:
            waiting = self._video_listeners.get(participant)
            if waiting is not None and entry in waiting:
                waiting.remove(entry)
            for cancel_on_feed in entry[1]:
                cancel_on_feed()

        return cancel

    def _published(self, source: Source) -> None:
        """A local participant's track arrived: connect it to whoever already watches them."""
        participant = source.id.participant
        if source.kind == "video":
            media = self._media.get(participant)
            feed = media.sources.get("video") if media is not None else None
            for listener, cancels in self._video_listeners.pop(participant, []):
                if feed is not None:
                    cancels.append(feed.when_media(listener))
        self.published(source)
        for observer in list(self._observers):
            observer.source_added(source)

    def published(self, source: Source) -> None:
        """A source appeared, local or from another :class:`SourceDirectory` (whose sources are
        looked up when a watcher connects): connect it to whoever already watches its participant."""
        participant = source.id.participant
        hidden = participant in self._hidden
        for watcher, publisher in list(self._watching.items()):
            if publisher != participant:
                continue
            media = self._media.get(watcher)
            track = media.outbound.get(source.kind) if media is not None else None
            if track is not None:
                track.connect(source, hidden=hidden)
