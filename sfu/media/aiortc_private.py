"""Former home of the aiortc hooks, kept so that older import lines keep working.

New code imports :mod:`sfu.media.aiortc_hooks` (``check``, ``PrivateApiError``) and its audience
modules ``server``, ``ice``, ``lifecycle`` and ``testing``. Nothing but these re-exports lives here.
"""

from __future__ import annotations

from .aiortc_hooks import (
    TESTED_AIOICE,
    TESTED_AIORTC,
    PrivateApiError,
    check,
    passthrough_problems,
    passthrough_supported,
)
from .aiortc_hooks.ice import PortRangeExhausted, bind_udp_in_range, set_host_addresses
from .aiortc_hooks.lifecycle import close_peer_connection
from .aiortc_hooks.server import (
    force_keyframe,
    negotiated_codecs,
    on_sender_codec,
    on_sender_feedback,
    packet_data,
    prefer_codecs,
    receiver_codec,
    rewrite_receiver_remb,
    send_pli,
    send_remb,
    tap_receiver,
)

__all__ = [
    "TESTED_AIOICE",
    "TESTED_AIORTC",
    "PortRangeExhausted",
    "PrivateApiError",
    "bind_udp_in_range",
    "check",
    "close_peer_connection",
    "force_keyframe",
    "negotiated_codecs",
    "on_sender_codec",
    "on_sender_feedback",
    "packet_data",
    "passthrough_problems",
    "passthrough_supported",
    "prefer_codecs",
    "receiver_codec",
    "rewrite_receiver_remb",
    "send_pli",
    "send_remb",
    "set_host_addresses",
    "tap_receiver",
]
