"""Every use of aiortc / aioice internals, in one place, checked against the installed versions.

aiortc has no public API for forcing a keyframe on a sender's encoder or for choosing which local
addresses ICE gathers on. The hooks below use private names; :func:`check` verifies at start-up that
they still exist, and ``tests/test_aiortc_private.py`` fails loudly if an aiortc upgrade moves them.
"""

from __future__ import annotations

import asyncio
from typing import Any, Sequence

import aioice
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


def set_host_addresses(pc: RTCPeerConnection, addresses: Sequence[str]) -> None:
    """Gather host candidates on exactly ``addresses`` instead of every non-loopback interface.

    aioice never offers 127.0.0.1 by itself. Call after the transceivers exist and before
    ``setLocalDescription`` (which gathers). An empty list keeps aioice's own choice.
    """
    if not addresses:
        return
    chosen = list(addresses)
    for connection in _ice_connections(pc):
        original = connection.get_component_candidates

        async def get_component_candidates(
            component: int, addresses: list[str], timeout: int = 5, _original: Any = original
        ) -> Any:
            return await _original(component=component, addresses=chosen, timeout=timeout)

        connection.get_component_candidates = get_component_candidates


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
