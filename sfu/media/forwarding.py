"""Choosing a forwarding strategy by name, and counting how each direction is forwarded.

``make_forwarding("auto" | "packet" | "passthrough" | "transcode")`` returns the :class:`~.strategy.Forwarding`
every participant's media uses; the names are :data:`sfu.media.modes.FORWARDING_MODES`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from . import aiortc_hooks
from .modes import FORWARDING_MODES
from .outbound import OutboundTrack
from .packets import PacketForwarding, make_packet_forwarding
from .passthrough import Passthrough
from .strategy import Forwarding
from .transcode import Transcode

log = logging.getLogger(__name__)

__all__ = [
    "FORWARDING_MODES",
    "Forwarding",
    "PacketForwarding",
    "Passthrough",
    "Transcode",
    "direction_modes",
    "make_forwarding",
]


def make_forwarding(name: str) -> Forwarding:
    """``transcode``; ``passthrough`` (encoded frames, error if aiortc does not allow it); ``packet``
    (RTP packets, error if aiortc does not allow it); or ``auto`` (packets where aiortc allows it,
    else encoded frames, else transcoding everything).

    Both encoded modes still transcode a direction whose two legs negotiated different codecs.
    """
    if name == "transcode":
        return Transcode()
    if name == "packet":
        return make_packet_forwarding(name)
    if name == "auto":
        supported, why = aiortc_hooks.packet_supported()
        if supported:
            return make_packet_forwarding(name)
        log.warning("packet forwarding unavailable (%s): forwarding encoded frames instead", why)
    if name in ("auto", "passthrough"):
        supported, why = aiortc_hooks.passthrough_supported()
        if not supported:
            if name == "passthrough":
                raise aiortc_hooks.PrivateApiError(
                    f"encoded forwarding unavailable: {why}; use --forwarding transcode"
                )
            log.warning("encoded forwarding unavailable (%s): transcoding everything", why)
            return Transcode()
        log.info("forwarding %s: encoded media is forwarded as is when both legs share a codec", name)
        return Passthrough(name)
    raise ValueError(f"unknown forwarding mode {name!r}")


class HasOutbound(Protocol):
    @property
    def outbound(self) -> dict[str, OutboundTrack]: ...


def direction_modes(medias: Iterable[HasOutbound]) -> dict[str, dict[str, int]]:
    """How many outbound directions of each kind are forwarded as packets, as encoded frames,
    transcoded, starting or idle."""
    counts: dict[str, dict[str, int]] = {}
    for media in medias:
        for kind, track in media.outbound.items():
            per_kind = counts.setdefault(kind, {})
            per_kind[track.direction] = per_kind.get(track.direction, 0) + 1
    return counts
