"""The operator's brand, served to the page: ``GET /brand.json`` (name, accent colour, logo, links)
and, when the logo is a file, ``GET /brand/logo``. The page reads it at start-up; no build step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from aiohttp import web

from .config import Config
from .config.brand import LOGO_TYPES, logo_kind

#: Where the page finds a logo given as a file.
LOGO_PATH = "/brand/logo"
#: A logo file is an image: nothing in it may run or load anything, even when opened on its own.
_LOGO_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "public, max-age=300",
}


@dataclass(frozen=True)
class Brand:
    name: str
    accent: str
    #: What the page loads as the logo (a URL, or LOGO_PATH), None for the built-in mark.
    logo: Optional[str] = None
    #: The file served at LOGO_PATH, when the logo is one.
    logo_file: Optional[Path] = None
    links: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Config) -> Brand:
        kind = logo_kind(config.brand_logo)
        logo_file = Path(config.brand_logo) if kind == "file" and config.brand_logo else None
        links = {
            name: url
            for name, url in (
                ("rules", config.brand_rules_url),
                ("privacy", config.brand_privacy_url),
                ("contact", config.brand_contact_url),
            )
            if url
        }
        return cls(
            name=config.brand_name.strip(),
            accent=config.brand_accent.lower(),
            logo=LOGO_PATH.lstrip("/") if logo_file else (config.brand_logo if kind == "url" else None),
            logo_file=logo_file,
            links=links,
        )

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "accent": self.accent, "logo": self.logo, "links": dict(self.links)}


def add_brand_routes(app: web.Application, config: Config) -> Brand:
    """Serve the brand of ``config`` (before the static client files)."""
    brand = Brand.from_config(config)

    async def brand_json(request: web.Request) -> web.Response:
        return web.json_response(brand.to_json(), headers={"Cache-Control": "no-cache"})

    app.router.add_get("/brand.json", brand_json)
    if brand.logo_file is not None:
        path = brand.logo_file
        content_type = LOGO_TYPES[path.suffix.lower()]

        async def logo(request: web.Request) -> web.FileResponse:
            return web.FileResponse(path, headers={**_LOGO_HEADERS, "Content-Type": content_type})

        app.router.add_get(LOGO_PATH, logo)
    return brand
