"""Checks on a client's SDP offer before aiortc sees it.

aiortc 1.16 accepts some malformed offers half-way and then fails in background tasks (exceptions
nobody retrieves) or in ``close()``. Refusing those offers up front keeps the failure a clean
``bad_sdp`` for the client. Found by fuzzing (tests/test_fuzz.py).
"""

from __future__ import annotations

from aiortc.sdp import SessionDescription


class BadOffer(ValueError):
    pass


def check_offer(sdp: str) -> None:
    """Raise :class:`BadOffer` if aiortc cannot be trusted with ``sdp``."""
    try:
        description = SessionDescription.parse(sdp)
    except Exception as exc:  # the parser raises many types on garbage
        raise BadOffer(f"unreadable SDP ({type(exc).__name__})") from None
    kinds = [media.kind for media in description.media]
    if "audio" not in kinds and "video" not in kinds:
        raise BadOffer("no audio or video section")
    if kinds.count("audio") > 1 or kinds.count("video") > 1:
        raise BadOffer("more than one audio or video section")
    mids = [media.rtp.muxId for media in description.media]
    if len(set(mids)) != len(mids):
        raise BadOffer("duplicate media ids")
    for group in description.group:
        if group.semantic == "BUNDLE":
            unknown = [item for item in group.items if item not in mids]
            if unknown:
                raise BadOffer(f"BUNDLE names unknown media ids {unknown[:3]}")
    for media in description.media:
        if media.kind in ("audio", "video", "application"):
            if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
                raise BadOffer(f"media {media.rtp.muxId!r} lacks ICE credentials")
            if media.dtls is None or not media.dtls.fingerprints:
                raise BadOffer(f"media {media.rtp.muxId!r} lacks a DTLS fingerprint")
