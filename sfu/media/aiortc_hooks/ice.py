"""ICE hooks: which local addresses are offered, and UDP ports bound within a range.

aioice binds every non-loopback interface on a port the system picks, never offers 127.0.0.1 and has
no option for a port range or a single port. :func:`set_host_addresses` replaces its gathering of
host candidates on one peer connection.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import random
import socket
from collections.abc import Sequence
from typing import Any

import aioice
import aioice.candidate
import aioice.ice
import aioice.turn
from aiortc import RTCIceGatherer, RTCPeerConnection

from .introspect import missing_attributes, missing_callables, unused_names


def problems() -> list[str]:
    """What these hooks need but the installed aioice lacks (empty: all present)."""
    found = missing_callables(aioice.Connection, ("get_component_candidates",), "aioice.Connection")
    found += missing_attributes(aioice.ice, ("StunProtocol", "server_reflexive_candidate"), "aioice.ice")
    found += missing_attributes(
        aioice.candidate, ("candidate_foundation", "candidate_priority"), "aioice.candidate"
    )
    found += missing_attributes(aioice.turn, ("UDP_SOCKET_BUFFER_SIZE",), "aioice.turn")
    probe = aioice.Connection(ice_controlling=True)
    found += missing_attributes(probe, ("_protocols", "stun_server"), "aioice.Connection")
    found += unused_names(RTCIceGatherer.__init__, ("_connection",), "aiortc.RTCIceGatherer.")
    return found


def ice_connections(pc: RTCPeerConnection) -> list[Any]:
    """The aioice connections under ``pc``'s transports (one when bundled)."""
    connections = []
    for transceiver in pc.getTransceivers():
        transport = transceiver.sender.transport
        if transport is None:
            continue
        connection = transport.transport.iceGatherer._connection
        if connection not in connections:
            connections.append(connection)
    return connections


def set_host_addresses(
    pc: RTCPeerConnection,
    addresses: Sequence[str],
    *,
    port_range: tuple[int, int] | None = None,
) -> None:
    """Gather host candidates on exactly ``addresses``, on UDP ports within ``port_range``.

    Call after the transceivers exist and before ``setLocalDescription`` (which gathers). An empty
    ``addresses`` keeps aioice's choice of interfaces; ``port_range=None`` any port. STUN and TURN
    candidates are gathered as aioice does.
    """
    if not addresses and port_range is None:
        return
    chosen = list(addresses)
    for connection in ice_connections(pc):
        connection.get_component_candidates = _gatherer(connection, chosen, port_range)


def _gatherer(connection: Any, chosen: list[str], port_range: tuple[int, int] | None) -> Any:
    original = connection.get_component_candidates

    async def get_component_candidates(component: int, addresses: list[str], timeout: int = 5) -> Any:
        if port_range is None:
            return await original(component=component, addresses=chosen, timeout=timeout)
        return await _gather_in_range(
            connection, original, component, chosen or addresses, port_range, timeout
        )

    return get_component_candidates


class PortRangeExhausted(OSError):
    """Every UDP port of the configured range is taken on an address."""


def bind_udp_in_range(address: str, port_range: tuple[int, int]) -> socket.socket:
    """A UDP socket bound to ``address`` on a free port of ``port_range`` (inclusive)."""
    low, high = port_range
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    count = high - low + 1
    first = random.randrange(count)  # spread concurrent servers and reuse over the range
    for step in range(count):
        port = low + (first + step) % count
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((address, port))
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                continue
            raise
        return sock
    raise PortRangeExhausted(errno.EADDRINUSE, f"no free UDP port in {low}-{high} on {address}")


async def _gather_in_range(
    connection: Any,
    original: Any,
    component: int,
    addresses: Sequence[str],
    port_range: tuple[int, int],
    timeout: int,
) -> list[Any]:
    """aioice's ``Connection.get_component_candidates``, with host sockets bound within a range."""
    loop = asyncio.get_running_loop()
    candidates: list[Any] = []
    host_protocols = []
    try:
        for address in addresses:
            sock = bind_udp_in_range(address, port_range)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, aioice.turn.UDP_SOCKET_BUFFER_SIZE)
            _, protocol = await loop.create_datagram_endpoint(
                lambda: aioice.ice.StunProtocol(connection), sock=sock
            )
            host_protocols.append(protocol)
            host, port = protocol.transport.get_extra_info("sockname")[:2]
            protocol.local_candidate = aioice.Candidate(
                foundation=aioice.candidate.candidate_foundation("host", "udp", host),
                component=component,
                transport="udp",
                priority=aioice.candidate.candidate_priority(component, "host"),
                host=host,
                port=port,
                type="host",
            )
            candidates.append(protocol.local_candidate)
    finally:
        # Owned by the connection from here on: closed with it, even if a later bind failed.
        connection._protocols += host_protocols

    tasks = []
    if connection.stun_server:
        tasks += [
            asyncio.ensure_future(aioice.ice.server_reflexive_candidate(p, connection.stun_server))
            for p in host_protocols
            if ipaddress.ip_address(p.local_candidate.host).version == 4
        ]
    # With no addresses, aioice's own gathering does only what is left: the TURN allocation.
    relayed = asyncio.ensure_future(original(component=component, addresses=[], timeout=timeout))
    if tasks:
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        candidates += [t.result()[0] for t in done if t.exception() is None]
    candidates += await relayed
    return candidates
