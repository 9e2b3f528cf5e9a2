"""What the operator's brand settings may be (``brand_*``): checked at start, one line per problem.

The page shows the name with ``textContent`` and the colour only as a CSS hex value, so nothing an
operator writes here can become HTML or CSS beyond a colour; these checks make mistakes visible at
start instead of silently ignored by browsers.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path
from typing import Literal, Optional
from urllib.parse import urlsplit

from .settings import Config

#: Longest site name, in characters.
MAX_NAME_LENGTH = 60
#: Image files the server may serve as the logo, by suffix, with their content type.
LOGO_TYPES = {
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".ico": "image/x-icon",
}
#: Bigger logo files are refused (a logo is a few kilobytes).
MAX_LOGO_BYTES = 1024 * 1024

_CSS_HEX = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


def is_css_hex(value: str) -> bool:
    """``#rgb`` or ``#rrggbb``."""
    return bool(_CSS_HEX.fullmatch(value))


def is_web_url(value: str, *, mail: bool = False) -> bool:
    """An absolute http(s) URL with a host (or, with ``mail``, a ``mailto:`` address)."""
    if any(c.isspace() or unicodedata.category(c) == "Cc" for c in value):
        return False
    parts = urlsplit(value)
    if parts.scheme in ("http", "https"):
        return bool(parts.hostname)
    return mail and parts.scheme == "mailto" and "@" in parts.path


def logo_kind(value: Optional[str]) -> Literal["none", "url", "file"]:
    """How ``brand_logo`` is given: not at all, as a URL, or as a file the server serves."""
    if not value:
        return "none"
    return "url" if urlsplit(value).scheme in ("http", "https") else "file"


def brand_problems(config: Config) -> list[str]:
    problems = []
    name = config.brand_name
    if not name.strip():
        problems.append("brand_name: must not be empty")
    elif len(name) > MAX_NAME_LENGTH:
        problems.append(f"brand_name: at most {MAX_NAME_LENGTH} characters (got {len(name)})")
    elif any(unicodedata.category(c) in ("Cc", "Cf") for c in name):
        problems.append("brand_name: control and formatting characters are not allowed")
    if not is_css_hex(config.brand_accent):
        problems.append(f"brand_accent: {config.brand_accent!r} is not a CSS hex colour (#rgb or #rrggbb)")
    problems += _logo_problems(config.brand_logo)
    for field in ("brand_rules_url", "brand_privacy_url", "brand_contact_url"):
        value = getattr(config, field)
        mail = field == "brand_contact_url"
        if value is not None and not is_web_url(value, mail=mail):
            expected = "an http(s) URL or mailto:" if mail else "an http(s) URL"
            problems.append(f"{field}: {value!r} is not {expected}")
    return problems


def _logo_problems(value: Optional[str]) -> list[str]:
    kind = logo_kind(value)
    if kind == "none" or value is None:
        return []
    if kind == "url":
        return [] if is_web_url(value) else [f"brand_logo: {value!r} is not a usable URL"]
    path = Path(value)
    if path.suffix.lower() not in LOGO_TYPES:
        return [f"brand_logo: {value!r} is neither an http(s) URL nor an image file ({', '.join(LOGO_TYPES)})"]
    if not path.is_file() or not os.access(path, os.R_OK):
        return [f"brand_logo: cannot read {value}"]
    if path.stat().st_size > MAX_LOGO_BYTES:
        return [f"brand_logo: {value} is over {MAX_LOGO_BYTES // 1024} KiB"]
    return []
