"""Media entries bound for other processes, packed into as few datagrams as latency allows.

Every datagram costs both processes a system call, and the receiver an event-loop wake-up, whatever
its size: on a loopback pipe that is as much CPU as forwarding its packets. So entries wait up to a
*window* (:class:`MediaBatches`' ``window``, the ``pipe_batch_ms`` setting) for company, and everything
waiting for one process leaves together: the packets of several pictures and sounds of one publisher,
and of every publisher that crosses to the same process. A window of 0 sends a picture's packets with
its last one (marker bit) and each sound at once. Entries marked ``now`` (repairs) leave at once with
whatever waits for the same process; a batch that would outgrow one datagram leaves early.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .peer import PipePeer

#: With no window: what waits for a picture's last packet that never came leaves after this long.
LEFTOVER_DELAY = 0.002
#: Largest media datagram to a process on this machine (loopback) and to one on another machine
#: (a typical path MTU minus headers: no IP fragmentation).
BATCH_BYTES_LOOPBACK = 60_000
BATCH_BYTES_NETWORK = 1_400


def batch_limit(host: str) -> int:
    return BATCH_BYTES_LOOPBACK if host.startswith("127.") or host in ("::1", "localhost") else BATCH_BYTES_NETWORK


class MediaBatches:
    """Entries waiting to leave, per peer address; ``send(peer, body)`` sends one datagram's body.

    ``window`` (seconds): how long an entry may wait for others (0: not at all, see the module)."""

    def __init__(self, send: Callable[[PipePeer, bytes], None], active: Callable[[], bool],
                 window: float = 0.0) -> None:
        if window < 0:
            raise ValueError("a batching window is not negative")
        self._send = send
        self._active = active
        self.window = window
        self._delay = window or LEFTOVER_DELAY
        #: per peer address: (peer, entries, [bytes waiting, most bytes per datagram])
        self._batches: dict[tuple[str, int], tuple[PipePeer, list[bytes], list[int]]] = {}
        self._flush_handle: asyncio.TimerHandle | None = None

    def add(self, peer: PipePeer, header: bytes, packet: bytes, ends: bool, repair: bool = False) -> None:
        """Queue one entry (``header`` then ``packet``). ``ends``: the last packet of a picture, or
        a sound (with no window, what waits for ``peer`` leaves now); ``repair``: it leaves now."""
        batch = self._batches.get(peer.address)
        if batch is not None and batch[0] is not peer and batch[0] != peer:
            self._flush_one(batch)
            batch = None
        size = len(header) + len(packet)
        if batch is None:
            batch = self._batches[peer.address] = (peer, [], [0, batch_limit(peer.address[0])])
        elif batch[2][0] + size > batch[2][1]:
            self._flush_one(batch)
        entries = batch[1]
        entries.append(header)
        entries.append(packet)
        batch[2][0] += size
        if repair or (ends and not self.window):
            self._flush_one(batch)
            handle = self._flush_handle
            if handle is not None and not any(b[1] for b in self._batches.values()):
                handle.cancel()  # nothing waits: a cancelled timer wakes nobody
                self._flush_handle = None
        elif self._flush_handle is None and self._active():
            self._flush_handle = asyncio.get_running_loop().call_later(self._delay, self.flush)

    def flush(self) -> None:
        """Send everything that waits."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()  # a cancelled timer wakes nobody
            self._flush_handle = None
        for batch in self._batches.values():
            self._flush_one(batch)
        if len(self._batches) > 64:  # forget peers nothing was sent to lately
            self._batches = {a: b for a, b in self._batches.items() if b[1]}

    def _flush_one(self, batch: tuple[PipePeer, list[bytes], list[int]]) -> None:
        peer, entries, size = batch
        if entries:
            self._send(peer, b"".join(entries))
            entries.clear()
            size[0] = 0
