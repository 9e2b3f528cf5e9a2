"""Every use of aiortc / aioice internals, grouped by who needs them, checked against the installed
versions.

aiortc has no public API for much of what a forwarding server does (tapping encoded frames, sending
RTCP, forcing keyframes, choosing which local addresses and ports ICE uses). Every private name and
internal module (``aiortc.rtp``, ``aiortc.codecs``, ``aiortc.sdp``, ``aioice.ice``, ...) used
anywhere in this project is reached through one of these modules, and nowhere else:

- :mod:`.server`: the server's media path: receiver taps, codecs, RTCP, decoding, SDP outline.
- :mod:`.packets`, :mod:`.packet_senders`, :mod:`.srtp`, :mod:`.sockets`: packet forwarding: RTP taken off a
  transport before aiortc parses it, sent through a watcher's SRTP session and socket (libsrtp
  called directly), a sender's own packets and feedback.
- :mod:`.ice`: host addresses offered and UDP ports bound within a range.
- :mod:`.lifecycle`: closing peer connections with their sockets and tasks.
- :mod:`.testing` (with :mod:`.packet_times`): what only test clients, load generators and benchmarks use.

:func:`check` runs at start-up; ``tests/test_aiortc_hooks.py`` fails loudly if an aiortc upgrade
moves anything listed by :func:`problems`, :func:`passthrough_problems`, :func:`packet_problems` or
:func:`testing_problems` (``tests/test_packet_hooks.py`` for the packet path).
"""

from __future__ import annotations

import aiortc

from . import ice, lifecycle, packet_senders, packets, server
from .introspect import TESTED_AIOICE, TESTED_AIORTC, PrivateApiError, tested, versions

__all__ = [
    "TESTED_AIOICE",
    "TESTED_AIORTC",
    "PrivateApiError",
    "check",
    "packet_problems",
    "packet_supported",
    "passthrough_problems",
    "passthrough_supported",
    "problems",
    "testing_problems",
]


def problems() -> list[str]:
    """Internals every forwarding mode needs that the installed versions lack (empty: none)."""
    return server.problems() + ice.problems() + lifecycle.problems()


def passthrough_problems() -> list[str]:
    """Internals encoded forwarding needs that the installed aiortc lacks (empty: none)."""
    return server.encoded_problems()


def passthrough_supported() -> tuple[bool, str]:
    """Whether encoded forwarding can run here, and why not."""
    return _verdict(passthrough_problems(), f"aiortc {aiortc.__version__} lacks")


def packet_problems() -> list[str]:
    """Internals packet forwarding needs that the installed versions lack (empty: none). It also
    uses the encoded-frame hooks, for directions it must transcode."""
    return packets.problems() + packet_senders.problems() + server.encoded_problems()


def packet_supported() -> tuple[bool, str]:
    """Whether packet forwarding can run here, and why not."""
    return _verdict(packet_problems(), f"{versions()} lack")


def _verdict(missing: list[str], lacking: str) -> tuple[bool, str]:
    """Supported unless internals are ``missing`` (said after ``lacking``) or aiortc is untested."""
    if missing:
        return False, f"{lacking} {', '.join(missing)}"
    if not aiortc.__version__.startswith(TESTED_AIORTC):
        return False, f"aiortc {aiortc.__version__} is untested (tested: {', '.join(TESTED_AIORTC)})"
    return True, ""


def testing_problems() -> list[str]:
    """Internals the test and load clients need that the installed versions lack (empty: none)."""
    from . import testing  # the server itself never loads the test hooks

    return testing.problems()


def check() -> None:
    """Raise :class:`PrivateApiError` if an internal every forwarding mode uses is missing."""
    missing = problems()
    if missing:
        raise PrivateApiError(f"{versions()} lack {', '.join(missing)}; sfu was tested with {tested()}")
