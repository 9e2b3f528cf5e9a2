"""Who may use the moderator API: a bearer token, or a console session signed in with that token.

- API clients send ``Authorization: Bearer <token>`` (compared in constant time).
- The console exchanges the token for a session cookie (HttpOnly, SameSite=Strict, path
  ``/api/mod``) that is signed, not stored: any node with the same token accepts it, and changing the
  token signs everyone out. Every state-changing request made with the cookie must also carry the
  session's CSRF token in ``X-CSRF-Token`` (a value the page only learns from a same-origin response).
- Failed sign-ins are throttled per client address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass

SESSION_COOKIE = "sfu_mod"
SESSION_PATH = "/api/mod"
CSRF_HEADER = "X-CSRF-Token"
MAX_NAME = 64


@dataclass(frozen=True)
class Principal:
    """An authenticated moderator: ``actor`` is what the audit log records."""

    actor: str
    via: str  # "bearer" or "session"
    csrf: str | None = None
    expires_at: float | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def clean_name(value: object, default: str) -> str:
    """A moderator's display name for the audit log: printable, at most 64 characters."""
    if not isinstance(value, str):
        return default
    name = "".join(ch for ch in value if ch.isprintable()).strip()[:MAX_NAME]
    return name or default


class ConsoleAuth:
    def __init__(self, token: str, session_seconds: float) -> None:
        self._token_digest = hashlib.sha256(token.encode("utf-8")).digest()
        self._key = hmac.new(self._token_digest, b"sfu moderator session", hashlib.sha256).digest()
        self.session_seconds = session_seconds

    def token_matches(self, given: str | None) -> bool:
        if not given:
            return False
        digest = hashlib.sha256(given.encode("utf-8", "replace")).digest()
        return hmac.compare_digest(digest, self._token_digest)

    def bearer(self, header: str | None, name: object = None) -> Principal | None:
        """The principal for an ``Authorization`` header, ``None`` if missing or wrong."""
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not self.token_matches(value.strip()):
            return None
        return Principal(actor="api:" + clean_name(name, "token"), via="bearer")

    # -- console sessions --------------------------------------------------------------------------
    def new_session(self, name: object, now: float) -> tuple[str, Principal]:
        """A signed cookie value and its principal, for someone who just gave the right token."""
        actor = "console:" + clean_name(name, "moderator")
        payload = _b64(json.dumps({"a": actor, "e": round(now + self.session_seconds, 3),
                                   "n": secrets.token_hex(12)}, separators=(",", ":")).encode("utf-8"))
        cookie = f"{payload}.{self._sign(payload)}"
        return cookie, self._principal(payload, actor, now + self.session_seconds)

    def session(self, cookie: str | None, now: float) -> Principal | None:
        """The principal of a valid, unexpired session cookie."""
        if not cookie or len(cookie) > 1024 or "." not in cookie:
            return None
        payload, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(signature.encode("ascii", "replace"), self._sign(payload).encode("ascii")):
            return None
        try:
            data = json.loads(_unb64(payload))
            actor, expires = str(data["a"]), float(data["e"])
        except (ValueError, KeyError, TypeError):
            return None
        if expires <= now:
            return None
        return self._principal(payload, actor, expires)

    def csrf_ok(self, principal: Principal, header: str | None) -> bool:
        if principal.via != "session":
            return True  # a bearer token is never sent by a browser on its own
        if not header or principal.csrf is None:
            return False
        return hmac.compare_digest(header.encode("ascii", "replace"), principal.csrf.encode("ascii"))

    def _principal(self, payload: str, actor: str, expires: float) -> Principal:
        csrf = _b64(hmac.new(self._key, b"csrf:" + payload.encode("ascii"), hashlib.sha256).digest()[:24])
        return Principal(actor=actor, via="session", csrf=csrf, expires_at=expires)

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, b"session:" + payload.encode("ascii", "replace"), hashlib.sha256).digest())


class SignInThrottle:
    """At most ``failures`` failed sign-ins per client address per ``window`` seconds."""

    def __init__(self, failures: int = 10, window: float = 60.0, max_addresses: int = 10_000) -> None:
        self.failures = failures
        self.window = window
        self.max_addresses = max_addresses
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str, now: float) -> float | None:
        times = self._recent(address, now)
        if len(times) < self.failures:
            return None
        return max(0.0, times[0] + self.window - now)

    def failed(self, address: str, now: float) -> None:
        times = self._recent(address, now)
        times.append(now)
        self._seen[address] = times
        self._seen.move_to_end(address)
        while len(self._seen) > self.max_addresses:
            self._seen.popitem(last=False)

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._seen.get(address, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            self._seen.pop(address, None)
        return times
