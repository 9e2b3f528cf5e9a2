"""Checks on a client's SDP offer before aiortc applies it.

aiortc 1.16 accepts some malformed offers half-way and then fails in background tasks (exceptions
nobody retrieves) or in ``close()``. Refusing those offers up front keeps the failure a clean
``bad_sdp`` for the client. Found by fuzzing (tests/test_fuzz.py).
"""

from __future__ import annotations

from .aiortc_hooks.server import outline_offer


class BadOffer(ValueError):
    pass


def check_offer(sdp: str) -> None:
    """Raise :class:`BadOffer` if aiortc cannot be trusted with ``sdp``."""
    try:
        offer = outline_offer(sdp)
    except ValueError as exc:
        raise BadOffer(str(exc)) from None
    kinds = [media.kind for media in offer.media]
    if "audio" not in kinds and "video" not in kinds:
        raise BadOffer("no audio or video section")
    if kinds.count("audio") > 1 or kinds.count("video") > 1:
        raise BadOffer("more than one audio or video section")
    mids = [media.mid for media in offer.media]
    if len(set(mids)) != len(mids):
        raise BadOffer("duplicate media ids")
    for bundle in offer.bundles:
        unknown = [item for item in bundle if item not in mids]
        if unknown:
            raise BadOffer(f"BUNDLE names unknown media ids {unknown[:3]}")
    for media in offer.media:
        if media.kind in ("audio", "video", "application"):
            if not media.has_ice_credentials:
                raise BadOffer(f"media {media.mid!r} lacks ICE credentials")
            if not media.has_fingerprint:
                raise BadOffer(f"media {media.mid!r} lacks a DTLS fingerprint")
