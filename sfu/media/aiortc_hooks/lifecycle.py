"""Closing a peer connection completely: its sockets, its tasks and its "closed" state.

Every receiver starts a decoder thread and every peer connection opens UDP sockets, so a connection
that is not closed to the end leaks both. aiortc's own ``close()`` falls short after an offer that
was only half applied, and leaves its connect task's failure unretrieved.
"""

from __future__ import annotations

import asyncio

from aiortc import RTCPeerConnection

from .introspect import missing_attributes, unused_names

#: aiortc's task that connects the transports once both descriptions are set.
_CONNECT_TASK = "RTCPeerConnection.__connect"


def problems() -> list[str]:
    """What these hooks need but the installed aiortc lacks (empty: all present)."""
    found = missing_attributes(
        RTCPeerConnection, ("_RTCPeerConnection__connect",), "aiortc.RTCPeerConnection"
    )
    found += unused_names(
        RTCPeerConnection.__init__, ("_RTCPeerConnection__isClosed",), "aiortc.RTCPeerConnection."
    )
    return found


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
    """aiortc's pending connect tasks for ``pc``."""
    found = []
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        if (
            frame is not None
            and getattr(coro, "__qualname__", "") == _CONNECT_TASK
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
