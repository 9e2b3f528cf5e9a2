"""SRTP through libsrtp directly, for the packet path's every packet.

pylibsrtp's ``Session.protect`` / ``unprotect`` allocate a length cell and copy through a Python
buffer slice on each call, and check their argument's type and length with several calls: about as
much time as the encryption itself. :class:`SrtpPath` keeps one length cell per session and copies
with ``ffi.memmove``, calling the same libsrtp functions on the same session state (so it may be
used alongside the session's own methods, from the same thread). It uses pylibsrtp's internals
(``Session._srtp``, ``Session._cdata``, ``pylibsrtp._binding``): :func:`problems` lists what is
missing.
"""

from __future__ import annotations

from typing import Any

import pylibsrtp
from pylibsrtp import Session

try:
    from pylibsrtp._binding import ffi, lib
except ImportError:  # pragma: no cover - an unexpected pylibsrtp build
    ffi = lib = None

from .introspect import unused_names

#: Room libsrtp needs after an RTP packet for its authentication tag.
RTP_TRAILER = int(getattr(pylibsrtp, "SRTP_MAX_TRAILER_LEN", 144))


def problems() -> list[str]:
    """What :class:`SrtpPath` needs but the installed pylibsrtp lacks (empty: none)."""
    if ffi is None or lib is None:
        return ["pylibsrtp._binding"]
    found = unused_names(Session.__init__, ("_srtp", "_cdata"), "pylibsrtp.Session.")
    found += [f"pylibsrtp._binding.lib.{name}" for name in ("srtp_protect", "srtp_unprotect", "srtp_err_status_ok")
              if not hasattr(lib, name)]
    return found


class SrtpPath:
    """Protect and unprotect RTP with one session's state; ``None`` where pylibsrtp would raise."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._state: Any = session._srtp[0]
        self._cdata: Any = session._cdata
        self._capacity = len(self._cdata)
        self._length = ffi.new("int *")
        self._view = ffi.buffer(self._cdata)
        self._ok = lib.srtp_err_status_ok

    # protect and unprotect are the same steps with another function: written out twice, as each
    # is called for every packet.
    def protect(self, packet: bytes) -> bytes | None:
        size = len(packet)
        if size > self._capacity - RTP_TRAILER:
            return None
        length = self._length
        length[0] = size
        ffi.memmove(self._cdata, packet, size)
        if lib.srtp_protect(self._state, self._cdata, length) != self._ok:
            return None
        return self._view[0 : length[0]]

    def unprotect(self, packet: bytes) -> bytes | None:
        size = len(packet)
        if size > self._capacity:
            return None
        length = self._length
        length[0] = size
        ffi.memmove(self._cdata, packet, size)
        if lib.srtp_unprotect(self._state, self._cdata, length) != self._ok:
            return None
        return self._view[0 : length[0]]


def path_of(session: Session, cached: SrtpPath | None) -> SrtpPath:
    """``cached`` if it was made for ``session``, else a new path for it."""
    if cached is not None and cached.session is session:
        return cached
    return SrtpPath(session)
