"""Former home of the aiortc hooks: only the names callers outside ``sfu/media`` still import.

New code imports :mod:`sfu.media.aiortc_hooks` (``check``, ``PrivateApiError``) and its audience
modules ``server``, ``ice``, ``lifecycle`` and ``testing``.
"""

from __future__ import annotations

from .aiortc_hooks import PrivateApiError, check
from .aiortc_hooks.ice import set_host_addresses

__all__ = ["PrivateApiError", "check", "set_host_addresses"]
