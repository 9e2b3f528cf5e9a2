"""Keyframe requests to a publisher (RTCP PLI), rate-limited.

A receiver can only start decoding a forwarded stream at a keyframe. Requests come from several
places — a new partner starts watching, the watcher's own browser reports picture loss, the inbound
stream lost a packet, someone wants the current picture — and are collapsed here: at most one PLI per
:data:`MIN_INTERVAL`, except that a request made after the last keyframe arrived goes out at once
(that keyframe cannot serve it). Callers that keep waiting simply ask again; the interval makes that
a re-ask every ~500 ms. Times are ``time.monotonic()`` seconds, passed in by the caller.
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
        #: A request waits for the publisher's SSRC (see :meth:`media_seen`).
        self.pending = False
        self.sent = 0

    def request(self, now: float) -> None:
        """Ask for a keyframe now, unless one was asked for recently and has not arrived yet."""
        if now - self._last_sent < MIN_INTERVAL and self._last_keyframe < self._last_sent:
            return
        ssrc = self._ssrc()
        if ssrc is None:
            self.pending = True  # no media yet: ask as soon as the first packet tells us the SSRC
            return
        self.pending = False
        self._last_sent = now
        self.sent += 1
        self._send_pli(ssrc)

    def media_seen(self, now: float) -> None:
        """Called per inbound frame: sends a request deferred until the publisher's SSRC was known."""
        if self.pending:
            self.request(now)

    def keyframe_arrived(self, now: float) -> None:
        self._last_keyframe = now
