"""``--require-camera``: look for a partner only once one's video reaches the server.

Watching strangers without showing yourself is how people get recorded. With the gate on, someone who
asks for a partner while no video of theirs arrives is told ``waiting`` and held back; the moment
their video arrives they are queued like anyone else. If it has not arrived :data:`GRACE` seconds
later they are told why (``camera_required``): video usually follows a fresh connection within a
fraction of a second, and nobody should read "turn your camera on" because they pressed Start fast.
Stop or leaving forgets them. Pure bookkeeping: whether video is live and when it arrives come from
the media side (the router's ``video_live`` / ``when_video``), and the release runs on the next turn
of the event loop, never inside the media callback that noticed the video.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["CameraGate"]

#: Seconds someone is held silently before being told their video does not reach the server.
GRACE = 2.0

#: ``when_video(participant, listener) -> cancel``
WhenVideo = Callable[[str, Callable[[], None]], Callable[[], None]]
#: ``later(delay, callback) -> cancel``
Later = Callable[[float, Callable[[], None]], Callable[[], None]]


def _next_turn(callback: Callable[[], None]) -> None:
    asyncio.get_running_loop().call_soon(callback)


def _call_later(delay: float, callback: Callable[[], None]) -> Callable[[], None]:
    return asyncio.get_running_loop().call_later(delay, callback).cancel


class CameraGate:
    def __init__(
        self,
        video_live: Callable[[str], bool],
        when_video: WhenVideo,
        defer: Callable[[Callable[[], None]], None] = _next_turn,
        later: Later = _call_later,
        grace: float = GRACE,
    ) -> None:
        self._video_live = video_live
        self._when_video = when_video
        self._defer = defer
        self._later = later
        self.grace = grace
        self._held: dict[str, tuple[object, list[Callable[[], None]]]] = {}  #: who -> (token, cancels)
        self.holds = 0
        self.released = 0

    def admits(self, who: str) -> bool:
        """Whether ``who``'s video reaches the server now."""
        return self._video_live(who)

    def holding(self, who: str) -> bool:
        return who in self._held

    def hold(self, who: str, ready: Callable[[], None], overdue: Callable[[], None] | None = None) -> None:
        """Hold ``who`` back; call ``ready()`` once (on a later turn of the event loop) when their
        video arrives, and ``overdue()`` if it has not after :attr:`grace` seconds, unless cancelled
        first. Holding someone already held replaces both."""
        self.cancel(who)
        token = object()

        def arrived() -> None:
            self._defer(lambda: self._release(who, token, ready))

        def late() -> None:
            held = self._held.get(who)
            if held is not None and held[0] is token and overdue is not None:
                overdue()

        cancels = [self._when_video(who, arrived)]
        if overdue is not None:
            cancels.append(self._later(self.grace, late))
        self._held[who] = (token, cancels)
        self.holds += 1

    def _release(self, who: str, token: object, ready: Callable[[], None]) -> None:
        held = self._held.get(who)
        if held is None or held[0] is not token:
            return  # cancelled, or held again since
        self.cancel(who)
        self.released += 1
        ready()

    def cancel(self, who: str) -> bool:
        """Forget ``who`` (stop, leave); True if they were held."""
        held = self._held.pop(who, None)
        if held is None:
            return False
        for cancel in held[1]:
            cancel()
        return True

    def __len__(self) -> int:
        return len(self._held)
