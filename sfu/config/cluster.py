"""The settings of several processes and machines on one shared pool (``redis_url``, ``node_id``,
``worker_id``, ``pipe_address`` of :class:`~sfu.config.settings.Config`): checks and derived values.

Without ``redis_url`` the server is one process with its pool in memory (the default); with it, the
pool of people is shared through Redis with every process given the same URL.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Optional
from urllib.parse import urlsplit

#: Characters a node or worker id may not hold (they are joined with "/" into process ids).
_FORBIDDEN = set("/ \t\r\n")


def node_name(node_id: Optional[str]) -> str:
    """The node id: configured, else the host name."""
    return node_id or socket.gethostname() or "node"


def cluster_problems(redis_url: Optional[str], node_id: Optional[str], worker_id: str, pipe_address: str) -> list[str]:
    problems = []
    if redis_url is not None:
        parts = urlsplit(redis_url)
        if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
            problems.append("redis_url: expected redis://host:port/db, rediss://... or unix://PATH")
    for name, value in (("node_id", node_id), ("worker_id", worker_id)):
        if value is not None and (not value or len(value) > 64 or _FORBIDDEN & set(value)):
            problems.append(f"{name}: 1 to 64 characters, no '/' or spaces, got {value!r}")
    try:
        parse_host_port(pipe_address)
    except ValueError as error:
        problems.append(f"pipe_address: {error}")
    return problems


def parse_host_port(text: str, default_port: int = 0) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` → (host, port); ``ValueError`` if malformed."""
    host, port = text, str(default_port)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"expected [IPv6]:PORT, got {text!r}")
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host:
        raise ValueError(f"no host in {text!r}")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"bad port in {text!r}") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"port out of range in {text!r}")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if any(c in host for c in "/ "):
            raise ValueError(f"bad host in {text!r}") from None
    return host, number
