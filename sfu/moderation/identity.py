"""Moderation identities: a signed device token plus a keyed hash of the client's address.

A device token is ``v1.<id>.<signature>``: 16 random bytes and an HMAC-SHA256 of them under the
server's secret (both base64url). It travels as the HttpOnly cookie ``sfu_device``; a token that does
not verify (forged, edited, from another server) is ignored and a new one is issued. Bans name the
device by its id, never by the token, so the database holds nothing that could be replayed.

The address is reduced to the network one person controls (IPv4 address, IPv6 /64) and hashed with a
key derived from the same secret, so the database never holds addresses and the hashes cannot be
reversed by trying every IPv4 address. Loopback and exempt addresses get no address hash: they are
never banned by address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

DEVICE_COOKIE = "sfu_device"
_VERSION = "v1"
_ID_BYTES = 16
_SIG_BYTES = 16
SECRET_FILE = "device-secret"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class ModerationIdentity:
    """Who someone is for moderation: their device id, and their address hash (``None``: exempt)."""

    device: str
    address_hash: str | None = None


@dataclass(frozen=True)
class DeviceToken:
    device: str
    token: str
    #: True when the client sent no valid token: set the cookie.
    issued: bool


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class IdentityIssuer:
    """Issues and verifies device tokens and hashes addresses under one secret."""

    def __init__(self, secret: bytes, exempt: Iterable[str] = ()) -> None:
        if len(secret) < 16:
            raise ValueError("the device secret must be at least 16 bytes")
        self._token_key = hmac.new(secret, b"sfu device token", hashlib.sha256).digest()
        self._address_key = hmac.new(secret, b"sfu address hash", hashlib.sha256).digest()
        self._exempt: list[Network] = [parse_network(item) for item in exempt]

    # -- device tokens -----------------------------------------------------------------------------
    def issue(self) -> DeviceToken:
        device = _b64(secrets.token_bytes(_ID_BYTES))
        return DeviceToken(device=device, token=f"{_VERSION}.{device}.{self._sign(device)}", issued=True)

    def verify(self, token: str | None) -> str | None:
        """The device id of a valid token, else ``None`` (never raises)."""
        if not token or len(token) > 128:
            return None
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _VERSION:
            return None
        device, signature = parts[1], parts[2]
        try:
            if len(_unb64(device)) != _ID_BYTES:
                return None
        except (ValueError, TypeError):
            return None
        if not hmac.compare_digest(signature.encode("ascii", "replace"), self._sign(device).encode("ascii")):
            return None
        return device

    def resolve(self, token: str | None) -> DeviceToken:
        """The client's token when it verifies, else a new one (``issued``)."""
        device = self.verify(token)
        if device is None:
            return self.issue()
        return DeviceToken(device=device, token=str(token), issued=False)

    def _sign(self, device: str) -> str:
        return _b64(hmac.new(self._token_key, device.encode("ascii"), hashlib.sha256).digest()[:_SIG_BYTES])

    # -- addresses ---------------------------------------------------------------------------------
    def address_hash(self, address: str | None) -> str | None:
        """A keyed hash of the address's network (IPv6: /64), ``None`` for loopback, exempt or unparsable."""
        ip = parse_address(address)
        if ip is None or self.is_exempt(ip):
            return None
        network = ipaddress.ip_network(f"{ip}/{32 if ip.version == 4 else 64}", strict=False)
        digest = hmac.new(self._address_key, str(network).encode("ascii"), hashlib.sha256).digest()
        return _b64(digest[:18])

    def is_exempt(self, ip: Address) -> bool:
        return ip.is_loopback or any(ip.version == ex.version and ip in ex for ex in self._exempt)

    def identity(self, device: str, address: str | None) -> ModerationIdentity:
        return ModerationIdentity(device=device, address_hash=self.address_hash(address))


def parse_address(address: str | None) -> Address | None:
    """The client's IP address (IPv4-mapped IPv6 as IPv4, zone dropped), ``None`` if unparsable."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def parse_network(text: str) -> Network:
    """An address (``203.0.113.7``) or network (``10.0.0.0/8``); ``ValueError`` if neither."""
    return ipaddress.ip_network(text.strip(), strict=False)


def exempt_problems(items: Iterable[str]) -> list[str]:
    problems = []
    for item in items:
        try:
            parse_network(item)
        except ValueError:
            problems.append(f"{item!r} is not an IP address or network")
    return problems


def load_or_create_secret(configured: str | None, data_dir: Path) -> bytes:
    """The configured secret, else the one kept in ``data_dir`` (created once, mode 0600)."""
    if configured:
        secret = configured.encode("utf-8")
        if len(secret) < 16:
            raise ValueError("device_secret: use at least 16 characters")
        return secret
    path = Path(data_dir) / SECRET_FILE
    try:
        existing = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing.encode("ascii")
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    # Written whole under a temporary name, then linked into place: a process starting at the same
    # moment either wins the link or reads the complete secret of the one that did.
    tmp = path.with_name(f".{SECRET_FILE}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text(encoding="ascii").strip().encode("ascii")


def device_cookie_attributes(max_age_days: float, secure: bool) -> dict:
    """Keyword arguments for aiohttp's ``response.set_cookie(DEVICE_COOKIE, token, **...)``."""
    return {
        "max_age": int(max_age_days * 86400),
        "path": "/",
        "httponly": True,
        "samesite": "Lax",
        "secure": secure,
    }
