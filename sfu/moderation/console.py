"""Serving the moderator console (``client/mod/``): a few static files with strict headers."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from aiohttp import web

#: No inline script or style, nothing from elsewhere, never framed.
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_ASSET = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(js|css|svg)$")
_TYPES = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}


def find_console_dir(configured: Path | None = None) -> Path | None:
    """``client/mod`` beside the source tree or installed under ``share/sfu/client/mod``."""
    candidates = [configured] if configured else []
    candidates += [
        Path(__file__).resolve().parent.parent.parent / "client" / "mod",
        Path(sys.prefix) / "share" / "sfu" / "client" / "mod",
    ]
    for candidate in candidates:
        if candidate and (candidate / "index.html").is_file():
            return candidate
    return None


class ConsoleFiles:
    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve()

    async def index(self, request: web.Request) -> web.StreamResponse:
        return self._file("index.html", "text/html")

    async def asset(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        match = _ASSET.match(name)
        if not match or not (self.directory / name).is_file():
            raise web.HTTPNotFound(text="not found", headers=SECURITY_HEADERS)
        return self._file(name, _TYPES[match.group(1)])

    def _file(self, name: str, content_type: str) -> web.StreamResponse:
        headers = dict(SECURITY_HEADERS)
        headers["Content-Security-Policy"] = CONSOLE_CSP
        headers["Content-Type"] = f"{content_type}; charset=utf-8" if content_type != "image/svg+xml" else content_type
        return web.FileResponse(self.directory / name, headers=headers)
