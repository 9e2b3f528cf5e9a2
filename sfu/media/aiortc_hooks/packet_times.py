"""When each RTP packet of a client left and reached its socket (for :func:`.testing.time_rtp`).

A packet sent is timed just before ``sendto`` (after SRTP protection). For a packet received,
asyncio reads aioice's sockets one datagram per event-loop iteration and says nothing of when a
datagram arrived: a busy client reads it late, and a latency measured at the read would count the
client's own backlog. :func:`stamp_arrivals` has the kernel stamp each datagram as it is queued on
the socket (``SO_TIMESTAMPNS``, Linux) and reads every waiting datagram at each readiness itself,
handing ``(datagram, time)`` to a callback before aioice gets the datagram as usual; the time
follows the datagram through aioice's queue to the DTLS transport, which reports the decrypted
packet with it.
"""

from __future__ import annotations

import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import aioice
import aioice.ice
from aiortc import RTCDtlsTransport, RTCIceTransport

from ..rtp.header import is_rtp
from .introspect import missing_attributes, missing_callables, unused_names
from .sockets import DRAIN, SELECTOR_DATAGRAM

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux's value; Python does not name it
_TIMESPEC = struct.Struct("@ll")  # struct timespec: seconds, nanoseconds
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)


def problems() -> list[str]:
    """What timing packets needs but the installed aiortc / aioice / asyncio lack (empty: none)."""
    found = [] if SELECTOR_DATAGRAM is not None else ["asyncio.selector_events._SelectorDatagramTransport"]
    found += unused_names(RTCIceTransport.__init__, ("_recv", "_send", "_connection"), "aiortc.RTCIceTransport.")
    found += missing_callables(RTCDtlsTransport, ("_send_rtp", "_handle_rtp_data"), "aiortc.RTCDtlsTransport")
    found += unused_names(aioice.Connection.__init__, ("_protocols",), "aioice.Connection.")
    found += missing_attributes(aioice.ice.StunProtocol, ("datagram_received", "error_received"), "aioice.ice.StunProtocol")
    return found


def stamp_arrivals(connection: Any, arrived: Callable[[bytes, float], None]) -> None:
    """Call ``arrived(datagram, at)`` for each datagram any socket of the aioice ``connection``
    receives, before aioice handles it; ``at`` is the kernel's arrival stamp (``time.time()``
    seconds; the time of the read where the kernel gave none). Call once the connection gathered
    its candidates. Raises ``RuntimeError`` when a socket is not read by asyncio's selector loop
    (uvloop, say) or cannot be stamped."""
    for protocol in connection._protocols:
        transport = protocol.transport
        if SELECTOR_DATAGRAM is None or type(transport) is not SELECTOR_DATAGRAM:
            raise RuntimeError(f"cannot stamp arrivals on {type(transport).__name__} (asyncio's selector loop only)")
        try:
            transport._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        except OSError as exc:
            raise RuntimeError(f"the kernel does not stamp arrivals: {exc}") from exc
        transport._loop._add_reader(transport._sock_fd, _reader(protocol, transport, arrived))


def _reader(protocol: Any, transport: Any, arrived: Callable[[bytes, float], None]) -> Callable[[], None]:
    recvmsg, size = transport._sock.recvmsg, transport.max_size

    def read_ready() -> None:
        for _ in range(DRAIN):
            if transport._conn_lost:
                return
            try:
                data, ancillary, _flags, addr = recvmsg(size, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                protocol.error_received(exc)
                return
            at = time.time()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= _TIMESPEC.size:
                    seconds, nanoseconds = _TIMESPEC.unpack_from(value)
                    at = seconds + nanoseconds / 1e9
            arrived(data, at)
            protocol.datagram_received(data, addr)

    return read_ready


def time_transport(dtls: Any, sent: Callable[[bytes, float], None], received: Callable[[bytes, float], None]) -> None:
    """Report each RTP packet the DTLS transport ``dtls`` sends or receives, in the clear, with
    when its datagram left or reached the socket (see :func:`.testing.time_rtp`)."""
    ice = dtls.transport
    send, recv, handle_rtp, send_rtp = ice._send, ice._recv, dtls._handle_rtp_data, dtls._send_rtp
    arrivals: deque[tuple[bytes, float]] = deque()
    stamp_arrivals(ice._connection, lambda data, at: arrivals.append((data, at)))
    arrived, leaving = [0.0], [0.0]  # of the datagram the DTLS transport handles / sends

    async def timed_recv() -> bytes:
        data = await recv()
        while arrivals:  # aioice's queue is first in, first out, and hands on the same object
            queued, at = arrivals.popleft()
            if queued is data:
                arrived[0] = at
                break
        return cast(bytes, data)

    async def timed_handle_rtp(data: bytes, arrival_time_ms: int) -> None:
        received(data, arrived[0])
        await handle_rtp(data, arrival_time_ms=arrival_time_ms)

    async def timed_send(data: bytes) -> None:
        leaving[0] = time.time()
        await send(data)

    async def timed_send_rtp(data: bytes) -> None:
        await send_rtp(data)  # SRTP protection, then timed_send
        if is_rtp(data):
            sent(data, leaving[0])

    ice._recv, ice._send = timed_recv, timed_send
    dtls._handle_rtp_data, dtls._send_rtp = timed_handle_rtp, timed_send_rtp
