"""Checking a configuration: every problem at once, one human-readable line each.

Pure: reads nothing but the configuration (and whether the files it names are readable).
"""

from __future__ import annotations

import ipaddress
import os
from typing import Optional

from .brand import brand_problems
from .catalog import all_settings
from .cluster import cluster_problems
from .settings import Config


def validate(config: Config) -> list[str]:
    """Every problem with ``config``, one line each (empty: fine)."""
    problems = []
    for s in all_settings():
        if s.group is not None:
            continue  # checked by the group's own validate() below
        value = getattr(config, s.name)
        if s.choices and value not in s.choices:
            problems.append(f"{s.name}: {value!r} is not one of {', '.join(s.choices)}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if s.min is not None and value < s.min:
                problems.append(f"{s.name}: {value} is below the minimum {s.min:g}")
            if s.max is not None and value > s.max:
                problems.append(f"{s.name}: {value} is above the maximum {s.max:g}")
    if not config.host:
        problems.append("host: must not be empty")
    for address in list(config.media_addresses) + list(config.ip_limits_exempt):
        if not _is_ip(address):
            problems.append(f"{address!r} is not an IP address")
    for server in config.ice_servers:
        if server.urls.split(":", 1)[0] not in ("stun", "stuns", "turn", "turns"):
            problems.append(f"ice_servers: {server.urls!r} is not a stun:, turn: or turns: URL")
    if config.hard_message_bytes < config.max_message_bytes:
        problems.append("hard_message_bytes: must be at least max_message_bytes")
    if (config.tls_cert is None) != (config.tls_key is None):
        problems.append("tls_cert and tls_key: give both or neither")
    for name in ("tls_cert", "tls_key"):
        path = getattr(config, name)
        if path is not None and not os.access(path, os.R_OK):
            problems.append(f"{name}: cannot read {path}")
    if config.client_dir is not None and not (config.client_dir / "index.html").is_file():
        problems.append(f"client_dir: no index.html in {config.client_dir}")
    problems += _network_problems(config)
    problems += _process_problems(config)
    problems += brand_problems(config)
    problems += config.moderation.validate()
    problems += cluster_problems(config.redis_url, config.node_id, config.worker_id, config.pipe_address)
    return problems


def _network_problems(config: Config) -> list[str]:
    """Public address, media port range and TURN settings (see docs/deploying.md)."""
    problems = []
    if config.public_ip is not None and not _is_ip(config.public_ip):
        problems.append(f"public_ip: public IP {config.public_ip!r} is not an IP address")
    try:
        config.media_port_range()
    except ValueError as exc:
        problems.append(str(exc))
    if config.turn_secret and config.turn_secret_file:
        problems.append("turn_secret and turn_secret_file: give one or the other")
    if config.turn_secret_file is not None and not os.access(config.turn_secret_file, os.R_OK):
        problems.append(f"turn_secret_file: cannot read {config.turn_secret_file}")
    else:
        secret = config.turn_secret_value()
        problems += [f"turn: {problem}" for problem in turn_problems(config.turn_urls, secret, config.turn_ttl)]
    return problems


def _process_problems(config: Config) -> list[str]:
    """Workers, Redis and admin ports (see docs/deploying.md)."""
    try:
        count = config.worker_count()
    except ValueError as exc:
        return [str(exc)]
    problems = []
    if count > 1 and not config.redis_url:
        problems.append(
            f"workers: {count} workers share one pool of people through Redis: give --redis-url "
            "(or run --workers 1)"
        )
    if count > 1 and config.port == 0:
        problems.append("workers: several workers share one fixed --port; 0 (any free port) cannot be shared")
    if config.admin_port and config.admin_port + count - 1 > 65535:
        problems.append(f"admin_port: {count} workers need ports {config.admin_port}-{config.admin_port + count - 1}")
    if config.admin_port and config.admin_host and not _is_ip(config.admin_host):
        problems.append(f"admin_host: {config.admin_host!r} is not an IP address")
    try:
        port_range = config.media_port_range()
    except ValueError:
        port_range = None  # reported by _network_problems
    if port_range is not None and port_range[1] - port_range[0] + 1 < count:
        problems.append(f"port_range: {count} workers need at least one media port each")
    return problems


def turn_problems(turn_urls: list[str], turn_secret: Optional[str], turn_ttl: float) -> list[str]:
    """What is wrong with a set of TURN settings (coturn ``use-auth-secret``); empty: usable."""
    problems = []
    if turn_secret and not turn_urls:
        problems.append("a TURN secret needs at least one TURN URL (--turn-url)")
    if turn_urls and not turn_secret:
        problems.append("TURN URLs need the shared secret coturn was given (--turn-secret)")
    for url in turn_urls:
        if not url.startswith(("turn:", "turns:")):
            problems.append(f"not a TURN URL: {url!r} (expected turn:HOST[:PORT][?transport=tcp])")
    if turn_ttl <= 0:
        problems.append("the TURN credential lifetime must be positive")
    return problems


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
