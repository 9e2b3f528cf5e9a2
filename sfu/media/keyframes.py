"""Keyframe requests to a publisher (RTCP PLI), rate-limited.

A receiver can only start decoding a forwarded stream at a keyframe. Requests come from several
places — a new partner starts watching, the watcher's own browser reports picture loss, the inbound
stream lost a packet, someone wants the current picture — and are collapsed here: at most one PLI per
:data:`MIN_INTERVAL`, except that a request made after the last keyframe arrived goes out at once
(that keyframe cannot serve it). A request stands until a keyframe arrives: while media flows
(:meth:`KeyframeRequester.media_seen`) it is sent again every ~500 ms, since the PLI, or the keyframe
that answers it, may be lost on the way. Times are ``time.monotonic()`` seconds, passed in by the
caller.
"""

from __future__ import annotations

from collections.abc import Callable

#: Shortest time between two PLIs while no keyframe has arrived.
MIN_INTERVAL = 0.5


class KeyframeRequester:
    def __init__(self, send_pli: Callable[[int], None], ssrc: Callable[[], int | None]) -> None:
        self._send_pli = send_pli
        self._ssrc = ssrc
        self._last_sent = -1e9
        self._last_keyframe = -1e9
        #: A request stands: no keyframe has arrived since it was made (see :meth:`media_seen`).
        self.pending = False
        self.sent = 0

    def request(self, now: float) -> None:
        """Ask for a keyframe now, unless one was asked for recently and has not arrived yet (the
        request then stands, and :meth:`media_seen` sends it again once the interval has passed)."""
        self.pending = True
        if now - self._last_sent < MIN_INTERVAL and self._last_keyframe < self._last_sent:
            return
        ssrc = self._ssrc()
        if ssrc is None:
            return  # no media yet: asked as soon as the first packet tells us the SSRC
        self._last_sent = now
        self.sent += 1
        self._send_pli(ssrc)

    def media_seen(self, now: float) -> None:
        """Called per inbound frame or packet: while a request stands (no keyframe since), ask again
        — at once if it waited for the publisher's SSRC, else once the interval has passed."""
        if self.pending:
            self.request(now)

    def keyframe_arrived(self, now: float) -> None:
        self._last_keyframe = now
        self.pending = False
