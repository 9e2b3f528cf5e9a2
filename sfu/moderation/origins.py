"""Which page origins may drive our endpoints from a browser (WebSocket upgrade, console changes).

Browsers always send ``Origin`` on WebSocket upgrades and cross-origin requests; other clients (the
headless client, load testers) send none and are not browsers that another site could drive.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit


def normalise_origin(origin: str) -> str:
    """``scheme://host[:port]`` in lower case, without a trailing slash or path."""
    parts = urlsplit(origin.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}" if parts.scheme and parts.netloc else origin.strip()


def origin_allowed(origin: str | None, host: str | None, allowed: Iterable[str] = ()) -> bool:
    """True for no ``Origin`` (not a browser), the server's own host (any scheme: TLS may end at a
    proxy), or one of ``allowed`` (e.g. ``https://chat.example.org``)."""
    if origin is None:
        return True
    if origin == "null":  # sandboxed frames, file:// pages
        return False
    if host and urlsplit(origin.strip()).netloc.lower() == host.strip().lower():
        return True
    wanted = normalise_origin(origin)
    return any(normalise_origin(item) == wanted for item in allowed)
