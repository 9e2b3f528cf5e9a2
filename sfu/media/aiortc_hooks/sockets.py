"""Reading the packet path's datagrams off aioice's sockets (asyncio internals, for :mod:`.packets`).

aioice tries to parse every datagram as STUN first, and asyncio reads one datagram per event-loop
iteration; the packet path hands RTP and RTCP straight to its tap and reads every datagram waiting
on a socket at each readiness.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
from collections.abc import Callable
from typing import Any


def skip_stun(protocol: Any, data_received: Callable[[bytes, int], None]) -> Callable[[bytes, Any], None]:
    original = protocol.datagram_received
    component = protocol.local_candidate.component

    def datagram_received(data: bytes, addr: Any) -> None:
        if data and 127 < data[0] < 192:
            data_received(data, component)
        else:
            original(data, addr)

    return datagram_received


SELECTOR_DATAGRAM = getattr(asyncio.selector_events, "_SelectorDatagramTransport", None)
#: Datagrams read per readiness of a socket at most (asyncio reads one per event-loop iteration).
DRAIN = 32


def drain_when_ready(protocol: Any, media: Callable[[bytes, int], None] | None = None) -> bool:
    """Read every datagram waiting on ``protocol``'s socket at each readiness, not just one: a
    picture's packets arrive together, and each event-loop iteration (a ``select``) costs as much
    as forwarding a packet. ``media``: where RTP and RTCP go (as :func:`skip_stun` sends them), called
    directly. Only asyncio's own selector loop is changed (False: left as it was)."""
    transport = protocol.transport
    if SELECTOR_DATAGRAM is None or type(transport) is not SELECTOR_DATAGRAM:
        return False
    sock, fd, loop = transport._sock, transport._sock_fd, transport._loop
    recvfrom, size = sock.recvfrom, transport.max_size
    received = protocol.datagram_received
    component = protocol.local_candidate.component

    def read_ready() -> None:
        for _ in range(DRAIN):
            if transport._conn_lost:
                return
            try:
                data, addr = recvfrom(size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                protocol.error_received(exc)
                return
            if media is not None and data and 127 < data[0] < 192:
                media(data, component)  # as skip_stun would, one call less per packet
            else:
                received(data, addr)

    loop._add_reader(fd, read_ready)
    return True
