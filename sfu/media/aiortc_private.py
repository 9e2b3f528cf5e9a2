"""Every use of aiortc / aioice internals, in one place, checked against the installed versions.

aiortc has no public API for forcing a keyframe on a sender's encoder or for choosing which local
addresses ICE gathers on. The hooks below use private names; :func:`check` verifies at start-up that
they still exist, and ``tests/test_aiortc_private.py`` fails loudly if an aiortc upgrade moves them.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import random
import socket
from typing import Any, Optional, Sequence

import aioice
import aioice.candidate
import aioice.ice
import aioice.turn
import aiortc
from aiortc import RTCPeerConnection, RTCRtpSender

#: Versions these hooks were written and tested against.
TESTED_AIORTC = ("1.16",)
TESTED_AIOICE = ("0.13",)


class PrivateApiError(RuntimeError):
    """The installed aiortc/aioice no longer has an internal this server relies on."""


def check() -> None:
    """Raise :class:`PrivateApiError` if an internal used here is missing."""
    problems = []
    if not callable(getattr(RTCRtpSender, "_send_keyframe", None)):
        problems.append("aiortc.RTCRtpSender._send_keyframe")
    if not callable(getattr(aioice.Connection, "get_component_candidates", None)):
        problems.append("aioice.Connection.get_component_candidates")
    for owner, name in (
        (aioice.ice, "StunProtocol"),
        (aioice.ice, "server_reflexive_candidate"),
        (aioice.candidate, "candidate_foundation"),
        (aioice.candidate, "candidate_priority"),
        (aioice.turn, "UDP_SOCKET_BUFFER_SIZE"),
    ):
        if not hasattr(owner, name):
            problems.append(f"{owner.__name__}.{name}")
    probe = aioice.Connection(ice_controlling=True)
    for name in ("_protocols", "_check_list", "_nominated", "stun_server", "remote_candidates"):
        if not hasattr(probe, name):
            problems.append(f"aioice.Connection.{name}")
    if problems:
        raise PrivateApiError(
            f"aiortc {aiortc.__version__} / aioice {aioice.__version__} lack {', '.join(problems)}; "
            f"sfu was tested with aiortc {', '.join(TESTED_AIORTC)} and aioice {', '.join(TESTED_AIOICE)}"
        )


def force_keyframe(sender: RTCRtpSender) -> None:
    """Make the sender's encoder emit a keyframe for the next frame it encodes."""
    sender._send_keyframe()


def _ice_connections(pc: RTCPeerConnection) -> list[Any]:
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
    port_range: Optional[tuple[int, int]] = None,
) -> None:
    """Gather host candidates on exactly ``addresses``, on UDP ports within ``port_range``.

    aioice binds every non-loopback interface on a port the system picks, never offers 127.0.0.1
    and has no option for a port range. Call after the transceivers exist and before
    ``setLocalDescription`` (which gathers). An empty ``addresses`` keeps aioice's choice of
    interfaces; ``port_range=None`` any port. STUN and TURN candidates are gathered as aioice does.
    """
    if not addresses and port_range is None:
        return
    chosen = list(addresses)
    for connection in _ice_connections(pc):
        original = connection.get_component_candidates
        if port_range is None:

            async def get_component_candidates(
                component: int, addresses: list[str], timeout: int = 5, _original: Any = original
            ) -> Any:
                return await _original(component=component, addresses=chosen, timeout=timeout)

        else:

            async def get_component_candidates(
                component: int,
                addresses: list[str],
                timeout: int = 5,
                _original: Any = original,
                _connection: Any = connection,
            ) -> Any:
                return await _gather_in_range(
                    _connection, _original, component, chosen or addresses, port_range, timeout
                )

        connection.get_component_candidates = get_component_candidates


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


def remote_addresses(pc: RTCPeerConnection) -> set[str]:
    """Every remote address ICE knows on ``pc``: signalled candidates and peer-reflexive ones."""
    found: set[str] = set()
    for connection in _ice_connections(pc):
        found.update(c.host for c in connection.remote_candidates)
        found.update(pair.remote_candidate.host for pair in connection._check_list)
    return found


def selected_pairs(pc: RTCPeerConnection) -> list[dict[str, Any]]:
    """The candidate pairs ICE chose on ``pc``: local candidate type, remote address and type."""
    chosen = []
    for connection in _ice_connections(pc):
        for pair in connection._nominated.values():
            chosen.append(
                {
                    "local_type": pair.local_candidate.type,
                    "local": f"{pair.local_candidate.host}:{pair.local_candidate.port}",
                    "remote_type": pair.remote_candidate.type,
                    "remote": f"{pair.remote_candidate.host}:{pair.remote_candidate.port}",
                }
            )
    return chosen


def take_keyframe_request(sender: RTCRtpSender) -> bool:
    """True once per keyframe request (PLI/FIR) received by ``sender`` since the last call.

    aiortc only records the request in a private flag that its encode path reads; a track that
    sends pre-encoded packets must read (and clear) it itself.
    """
    name = "_RTCRtpSender__force_keyframe"
    requested = bool(getattr(sender, name, False))
    if requested:
        setattr(sender, name, False)
    return requested
async def close_peer_connection(pc: RTCPeerConnection) -> None:
    """``pc.close()``, also after an offer that was only half applied.

    aiortc 1.16's ``close()`` raises AttributeError when ``setRemoteDescription`` failed after creating
    a transceiver but before giving it a transport; it then leaves the other transports (UDP sockets)
    open and its "closed" future unresolved. Finish the job here.
    """
    connecting = _connect_tasks(pc)
    try:
        await pc.close()
    except AttributeError:
        await _finish_close(pc)
    if connecting:
        # Closing while aiortc's connect task is between two awaits makes that task fail with
        # InvalidStateError, logged as "Task exception was never retrieved": collect it here.
        await asyncio.wait(connecting, timeout=2.0)
        for task in connecting:
            if task.done() and not task.cancelled():
                task.exception()


def _connect_tasks(pc: RTCPeerConnection) -> list[asyncio.Task]:
    """aiortc's pending ``RTCPeerConnection.__connect`` tasks for ``pc``."""
    found = []
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        if (
            frame is not None
            and getattr(coro, "__qualname__", "") == "RTCPeerConnection.__connect"
            and frame.f_locals.get("self") is pc
        ):
            found.append(task)
    return found


async def _finish_close(pc: RTCPeerConnection) -> None:
    for transceiver in pc.getTransceivers():
        for transport in (transceiver.receiver.transport, transceiver.sender.transport):
            if transport is None:
                continue
            await transport.stop()
            await transport.transport.stop()
    pc.remove_all_listeners()
    closed = getattr(pc, "_RTCPeerConnection__isClosed", None)
    if isinstance(closed, asyncio.Future) and not closed.done():
        closed.set_result(True)
