"""Server configuration: one dataclass, safe defaults (loopback only, nothing leaves the machine)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from aiortc import RTCIceServer


@dataclass
class IceServer:
    """A STUN or TURN server, as handed to browsers and used by the server."""

    urls: str
    username: Optional[str] = None
    credential: Optional[str] = None

    def to_aiortc(self) -> RTCIceServer:
        return RTCIceServer(urls=self.urls, username=self.username, credential=self.credential)

    def to_json(self) -> dict:
        out: dict = {"urls": self.urls}
        if self.username is not None:
            out["username"] = self.username
            out["credential"] = self.credential
        return out


@dataclass
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    #: Addresses offered for media (host candidates). Empty: 127.0.0.1 when ``host`` is loopback
    #: and no ``public_ip`` is set, otherwise every non-loopback interface.
    media_addresses: list[str] = field(default_factory=list)
    #: ICE servers, for the server and its clients. Empty by default: no STUN or TURN is contacted.
    ice_servers: list[IceServer] = field(default_factory=list)
    #: Address announced in place of the private one in the server's host candidates (1:1 NAT,
    #: e.g. a cloud VM). ``None``: announce the local address as it is.
    public_ip: Optional[str] = None
    #: UDP ports for the server's media sockets (both inclusive); 0: any port the system picks.
    media_port_min: int = 0
    media_port_max: int = 0
    #: TURN URLs handed to clients with credentials minted per client from ``turn_secret``
    #: (coturn ``use-auth-secret``), valid for ``turn_ttl`` seconds.
    turn_urls: list[str] = field(default_factory=list)
    turn_secret: Optional[str] = None
    turn_ttl: int = 86400
    #: "auto" (forward encoded media when both legs share a codec, else transcode), "passthrough"
    #: (same, but refuse to start if the installed aiortc does not allow it) or "transcode".
    forwarding: str = "auto"
    #: Seconds during which a participant who pressed Next is not paired back with the same partner.
    rematch_cooldown: float = 5.0
    #: Messages over this many bytes are refused with ``message_too_large``.
    max_message_bytes: int = 64 * 1024
    #: Frames over this many bytes close the socket (WebSocket code 1009).
    hard_message_bytes: int = 1024 * 1024
    max_chat_length: int = 1000
    #: Seconds between two ``online`` broadcasts.
    online_interval: float = 1.0
    #: Where the browser client lives; ``None`` finds it beside the package.
    client_dir: Optional[Path] = None
    log_level: str = "info"

    def host_addresses(self) -> list[str]:
        if self.media_addresses:
            return list(self.media_addresses)
        if self.public_ip is None and (self.host in ("localhost",) or _is_loopback(self.host)):
            return ["127.0.0.1"]
        return []

    def media_port_range(self) -> Optional[tuple[int, int]]:
        """The media UDP port range, ``None`` for any port; ``ValueError`` if inconsistent."""
        if not self.media_port_min and not self.media_port_max:
            return None
        if not 1024 <= self.media_port_min <= self.media_port_max <= 65535:
            raise ValueError(
                f"media port range {self.media_port_min}-{self.media_port_max}: "
                "expected 1024 <= min <= max <= 65535"
            )
        return (self.media_port_min, self.media_port_max)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
