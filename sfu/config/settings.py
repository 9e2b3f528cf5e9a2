"""Server configuration: one dataclass, safe defaults (loopback only, nothing leaves the machine).

Every field is one setting. Its ``metadata`` (see :func:`setting`) documents it; :func:`~.catalog.all_settings`
derives the command-line flag, the ``SFU_<NAME>`` environment variable and the TOML key from the
field, so a new setting needs only a new field here. The moderation settings live in their own
dataclass (:class:`~sfu.moderation.settings.ModerationSettings`, ``Config.moderation``) and are
loaded the same way, as flat flags, variables and keys. Imports nothing of the media stack: the
server turns :class:`IceServer` into aiortc's own type where it builds the media side.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..media.modes import FORWARDING_MODES
from ..moderation.settings import ModerationSettings

ENV_PREFIX = "SFU_"
#: Most processes ``--workers`` may start on one machine.
MAX_WORKERS = 256


@dataclass
class IceServer:
    """A STUN or TURN server, as handed to browsers and used by the server."""

    urls: str
    username: Optional[str] = None
    credential: Optional[str] = None

    def to_json(self) -> dict[str, Optional[str]]:
        """As a browser's ``RTCIceServer`` dictionary (``welcome``'s ``iceServers``)."""
        out: dict[str, Optional[str]] = {"urls": self.urls}
        if self.username is not None:
            out["username"] = self.username
            out["credential"] = self.credential
        return out


def setting(
    default: Any = None,
    help: str = "",
    *,
    factory: Any = None,
    flag: Optional[str] = None,
    metavar: Optional[str] = None,
    choices: Optional[list[str]] = None,
    min: Optional[float] = None,
    max: Optional[float] = None,
    secret: bool = False,
) -> Any:
    """A documented setting. ``flag`` overrides the derived ``--field-name``; ``min``/``max`` are
    checked at start; ``secret`` values (and fields named like ``*secret*``, ``*password*``,
    ``*credential*``) are masked by ``sfu config``."""
    metadata = {
        "help": help,
        "flag": flag,
        "metavar": metavar,
        "choices": choices,
        "min": min,
        "max": max,
        "secret": secret,
    }
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class Config:
    host: str = setting("127.0.0.1", "address to listen on for HTTP and WebSocket")
    port: int = setting(8080, "HTTP(S) port (0: any free port)", min=0, max=65535)
    media_addresses: list[str] = setting(
        factory=list,
        flag="--media-address",
        metavar="IP",
        help="local address offered for media (repeatable; comma-separated in the environment); "
        "default: 127.0.0.1 when --host is loopback and no --public-ip is given, else every "
        "non-loopback interface",
    )
    ice_servers: list[IceServer] = setting(
        factory=list,
        flag="--ice-server",
        metavar="URL",
        help="STUN/TURN URL for the server and its clients (repeatable); default: none, so nothing "
        "is contacted outside this machine",
    )
    public_ip: Optional[str] = setting(
        None,
        "announce this address in place of the local one (server behind 1:1 NAT, e.g. a cloud VM); "
        "media then also leaves loopback",
        metavar="IP",
    )
    port_range: Optional[str] = setting(
        None, "UDP ports for media, MIN-MAX (one per participant and media address); default: any",
        metavar="MIN-MAX",
    )
    turn_urls: list[str] = setting(
        factory=list,
        flag="--turn-url",
        metavar="URL",
        help="TURN URL handed to clients with per-client credentials from --turn-secret (repeatable), "
        "e.g. turn:turn.example.org:3478?transport=tcp or turns:turn.example.org:443?transport=tcp",
    )
    turn_secret: Optional[str] = setting(None, "coturn static-auth-secret (use-auth-secret)", secret=True)
    turn_secret_file: Optional[Path] = setting(
        None, "read the coturn static-auth-secret from this file (keeps it out of the process list)",
        metavar="PATH",
    )
    turn_ttl: int = setting(86400, "lifetime of the TURN credentials given to each client, in seconds", min=1)
    forwarding: str = setting(
        "auto",
        "how media is forwarded between partners: passthrough sends encoded media unchanged when both "
        "legs share a codec; transcode decodes and re-encodes; auto is passthrough where the installed "
        "aiortc allows it, else transcode",
        choices=list(FORWARDING_MODES),
    )
    rematch_cooldown: float = setting(
        5.0, "after Next, do not pair the same two people again for this many seconds", min=0, metavar="SECONDS"
    )
    interest_wait: float = setting(
        5.0,
        "someone with interests is paired only with people sharing one for this many seconds, then with "
        "anyone (unless they asked for common interests only)",
        min=0,
        metavar="SECONDS",
    )
    language_wait: float = setting(
        0.0,
        "someone who named languages waits this many seconds for a person sharing one before anyone will "
        "do (0: a shared language is preferred but never waited for)",
        min=0,
        metavar="SECONDS",
    )
    max_message_bytes: int = setting(
        64 * 1024, "signaling messages over this many bytes are refused (message_too_large)", min=64
    )
    hard_message_bytes: int = setting(
        1024 * 1024, "signaling frames over this many bytes close the socket (WebSocket code 1009)", min=64
    )
    max_chat_length: int = setting(1000, "longest chat message, in characters", min=1)
    online_interval: float = setting(1.0, "seconds between two 'online' broadcasts", min=0.05, metavar="SECONDS")
    client_dir: Optional[Path] = setting(None, "serve the browser client from this directory")
    log_level: str = setting("info", "log level", choices=["debug", "info", "warning", "error"])
    log_format: str = setting("text", "log line format: text, or one JSON object per line", choices=["text", "json"])
    log_client_addresses: bool = setting(
        False, "log full client IP addresses (default: a short keyed hash that only links one visit's lines)"
    )
    # -- limits (see sfu/limits.py) --------------------------------------------------------------
    max_participants: int = setting(
        200, "most people connected at once; more get server_full (0: no limit)", min=0
    )
    ip_max_connections: int = setting(
        20, "most WebSocket connections open at once from one client address (0: no limit)", min=0
    )
    ip_connection_rate: float = setting(
        2.0, "new connections per second allowed from one client address, on average", min=0.001
    )
    ip_connection_burst: int = setting(20, "new connections one client address may open in a burst", min=1)
    ip_limits_exempt: list[str] = setting(
        factory=lambda: ["127.0.0.1", "::1"],
        metavar="IP",
        help="client addresses the per-address limits do not apply to (repeatable)",
    )
    message_rate: float = setting(
        20.0, "signaling messages per second allowed on one connection, on average (rate_limited)", min=0.001
    )
    message_burst: int = setting(40, "signaling messages one connection may send in a burst", min=1)
    offer_timeout: float = setting(
        30.0, "close a connection that has not sent an offer after this many seconds", min=0.1, metavar="SECONDS"
    )
    ice_timeout: float = setting(
        30.0, "close a connection whose media has not connected this many seconds after its offer",
        min=0.1, metavar="SECONDS",
    )
    idle_timeout: float = setting(
        900.0, "close a connection neither waiting nor paired that sent nothing for this many seconds",
        min=0.1, metavar="SECONDS",
    )
    trust_forwarded_for: bool = setting(
        False, "take the client address from X-Forwarded-For (only behind a proxy that sets it)"
    )
    # -- operations ------------------------------------------------------------------------------
    drain_grace: float = setting(
        0.0, "on SIGTERM, first report not ready at /readyz for this many seconds while still serving, "
        "so a load balancer stops sending new people here, then drain", min=0, metavar="SECONDS",
    )
    drain_timeout: float = setting(
        10.0, "on SIGTERM, seconds allowed to tell clients and close every connection before exiting",
        min=0, metavar="SECONDS",
    )
    tls_cert: Optional[Path] = setting(None, "PEM certificate (chain): serve HTTPS directly (with --tls-key)")
    tls_key: Optional[Path] = setting(None, "PEM private key for --tls-cert")
    metrics: bool = setting(True, "serve Prometheus metrics at /metrics")
    stats_interval: float = setting(
        5.0, "seconds between two samples of bytes and packets forwarded", min=0.1, metavar="SECONDS"
    )
    # -- processes: workers sharing the port, overload shedding, admin ports ------------------
    workers: str = setting(
        "1",
        "processes serving the HTTP port together (SO_REUSEPORT), a number or auto (one per core); "
        "more than 1 needs --redis-url",
        metavar="N|auto",
    )
    reuse_port: bool = setting(
        False, "bind the HTTP port with SO_REUSEPORT so several sfu processes share it (set for each worker)"
    )
    admin_port: int = setting(
        0,
        "also serve /healthz, /readyz and /metrics on this port of --admin-host; worker i of --workers "
        "on PORT+i (0: off)",
        min=0, max=65535, metavar="PORT",
    )
    admin_host: str = setting("127.0.0.1", "address of the --admin-port listener(s)", metavar="IP")
    max_loop_lag: float = setting(
        0.05,
        "overloaded (newcomers get server_full, /readyz 503) while the event loop runs timers this many "
        "seconds late on average over 2 s (0: never)",
        min=0, metavar="SECONDS",
    )
    max_cpu: float = setting(
        0.9, "overloaded while this process uses more than this share of one core over 2 s (0: never)",
        min=0, metavar="CORES",
    )
    # -- the operator's brand (the page reads it from /brand.json) ----------------------------
    brand_name: str = setting("Roulette", "site name in the page's header and title (plain text)", metavar="TEXT")
    brand_accent: str = setting(
        "#6d5dfc", "accent colour of the page: a CSS hex colour, #rgb or #rrggbb", metavar="#RRGGBB"
    )
    brand_logo: Optional[str] = setting(
        None,
        "logo in the page's header: an http(s) URL, or an image file (PNG, SVG, JPEG, WebP, GIF, ICO) "
        "served at /brand/logo; default: the built-in mark",
        metavar="URL|PATH",
    )
    brand_rules_url: Optional[str] = setting(None, "link to the site's rules, shown under the page", metavar="URL")
    brand_privacy_url: Optional[str] = setting(None, "link to the privacy policy, shown under the page", metavar="URL")
    brand_contact_url: Optional[str] = setting(
        None, "contact link shown under the page (https URL or mailto:)", metavar="URL"
    )
    # -- several processes and machines on one shared pool (checked in sfu/config/cluster.py) ----
    redis_url: Optional[str] = setting(
        None,
        "share the pool of people with other processes and machines through this Redis "
        "(redis://[:password@]host:port/db; default: none, one process with its pool in memory)",
        metavar="URL", secret=True,
    )
    node_id: Optional[str] = setting(None, "this machine's name in the shared pool (default: the host name)",
                                     metavar="NAME")
    worker_id: str = setting(
        "0", "this process's name among the processes of its machine (set for each worker by --workers)", metavar="ID",
    )
    pipe_address: str = setting(
        "127.0.0.1:0",
        "address other processes send media to for the people this process serves, host[:port] (port 0: any "
        "free port); with several machines, a private address the others reach",
        metavar="HOST[:PORT]",
    )
    pipe_batch_ms: float = setting(
        5.0,
        "media crossing to another process waits up to this many milliseconds to share a datagram with other "
        "packets (fewer datagrams: less CPU in both processes; 0: each picture and sound at once)",
        min=0, max=50, metavar="MS",
    )
    # -- safety and moderation (their own settings, each one flag/variable/key like the above) --
    moderation: ModerationSettings = field(default_factory=ModerationSettings, metadata={"group": "moderation"})

    def host_addresses(self) -> list[str]:
        if self.media_addresses:
            return list(self.media_addresses)
        if self.public_ip is None and (self.host in ("localhost",) or _is_loopback(self.host)):
            return ["127.0.0.1"]
        return []

    def media_port_range(self) -> Optional[tuple[int, int]]:
        """The media UDP port range, ``None`` for any port; ``ValueError`` if malformed."""
        if not self.port_range:
            return None
        try:
            low, high = (int(part) for part in self.port_range.split("-", 1))
        except ValueError:
            raise ValueError(f"port_range: expected MIN-MAX, got {self.port_range!r}") from None
        if not 1024 <= low <= high <= 65535:
            raise ValueError(f"port_range: expected 1024 <= MIN <= MAX <= 65535, got {self.port_range!r}")
        return (low, high)

    def worker_count(self) -> int:
        """How many processes ``workers`` asks for (``auto``: the cores this process may run on);
        ``ValueError`` if malformed."""
        text = str(self.workers).strip().lower()
        if text == "auto":
            return available_cores()
        try:
            count = int(text)
        except ValueError:
            raise ValueError(f"workers: expected a number or auto, got {self.workers!r}") from None
        if not 1 <= count <= MAX_WORKERS:
            raise ValueError(f"workers: expected 1 to {MAX_WORKERS} or auto, got {self.workers!r}")
        return count

    def turn_secret_value(self) -> Optional[str]:
        """The TURN secret, read from ``turn_secret_file`` when given."""
        if self.turn_secret_file is not None:
            return self.turn_secret_file.read_text().strip()
        return self.turn_secret


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
