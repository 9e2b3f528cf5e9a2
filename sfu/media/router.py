"""Who receives whose media, by participant id.

Signaling tells the router "participant W now watches participant P" with ids (plain values), never
with media objects, so a publisher can later live elsewhere (another process) behind the same call.
"""

from __future__ import annotations

from typing import Iterator, Optional

from .peer import PeerMedia


class MediaRouter:
    """Every participant's media, keyed by participant id; connects a publisher to a watcher."""

    def __init__(self) -> None:
        self._media: dict[str, PeerMedia] = {}

    def add(self, participant: str, media: PeerMedia) -> None:
        self._media[participant] = media

    def discard(self, participant: str) -> Optional[PeerMedia]:
        """Forget a participant (their own media is closed by whoever owns it)."""
        return self._media.pop(participant, None)

    def get(self, participant: str) -> Optional[PeerMedia]:
        return self._media.get(participant)

    def __iter__(self) -> Iterator[PeerMedia]:
        return iter(list(self._media.values()))

    def connect(self, watcher: str, publisher: Optional[str]) -> None:
        """Send ``publisher``'s media to ``watcher`` from now on (``None``: nobody's)."""
        media = self._media.get(watcher)
        if media is None:
            return
        media.watch(self._media.get(publisher) if publisher is not None else None)
