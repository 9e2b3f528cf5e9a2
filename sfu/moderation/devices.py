"""The ``sfu_device`` cookie on the page and the WebSocket upgrade: who a browser is, for moderation.

A request with a valid device token keeps it; one without (or with a forged token) gets a new one,
set as an HttpOnly cookie on the response, so it comes back on every reconnect.
"""

from __future__ import annotations

from aiohttp import web

from .identity import DEVICE_COOKIE, DeviceToken, IdentityIssuer, device_cookie_attributes


def request_device(issuer: IdentityIssuer, request: web.Request) -> DeviceToken:
    """The device the request's cookie names, or a new one (``issued``) when it has none that verifies."""
    return issuer.resolve(request.cookies.get(DEVICE_COOKIE))


def is_https(request: web.Request, trust_forwarded: bool) -> bool:
    """Whether the visitor reached us over HTTPS (directly, or through a trusted proxy that says so)."""
    if request.secure:
        return True
    return trust_forwarded and request.headers.get("X-Forwarded-Proto", "").strip().lower() == "https"


def remember_device(response: web.StreamResponse, device: DeviceToken, *, max_age_days: float, secure: bool) -> None:
    """Set the cookie on ``response`` when ``device`` is new (a known device is left as it is)."""
    if device.issued:
        response.set_cookie(DEVICE_COOKIE, device.token, **device_cookie_attributes(max_age_days, secure))
