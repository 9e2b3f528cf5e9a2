"""Media entries bound for other processes, packed into as few datagrams as the picture allows.

The packets of one picture for one process share a datagram, sent with the picture's last packet
(one seal, one ``sendto`` and one wake-up of the receiver per picture); entries marked ``now``
(sound, repairs) leave at once with whatever waits for the same process. Should a picture's last
packet not come, what waits is sent after :data:`BATCH_DELAY` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .peer import PipePeer

BATCH_DELAY = 0.002
#: Largest media datagram to a process on this machine (loopback) and to one on another machine
#: (a typical path MTU minus headers: no IP fragmentation).
BATCH_BYTES_LOOPBACK = 60_000
BATCH_BYTES_NETWORK = 1_400


def batch_limit(host: str) -> int:
    return BATCH_BYTES_LOOPBACK if host.startswith("127.") or host in ("::1", "localhost") else BATCH_BYTES_NETWORK


class MediaBatches:
    """Entries waiting to leave, per peer address; ``send(peer, body)`` sends one datagram's body."""

    def __init__(self, send: Callable[[PipePeer, bytes], None], active: Callable[[], bool]) -> None:
        self._send = send
        self._active = active
        #: per peer address: (peer, entries, [bytes waiting, most bytes per datagram])
        self._batches: dict[tuple[str, int], tuple[PipePeer, list[bytes], list[int]]] = {}
        self._flush_handle: asyncio.TimerHandle | None = None

    def add(self, peer: PipePeer, entry: bytes, now: bool) -> None:
        batch = self._batches.get(peer.address)
        if batch is not None and batch[0] is not peer and batch[0] != peer:
            self._flush_one(batch)
            batch = None
        if batch is None:
            batch = self._batches[peer.address] = (peer, [], [0, batch_limit(peer.address[0])])
        elif batch[2][0] + len(entry) > batch[2][1]:
            self._flush_one(batch)
        batch[1].append(entry)
        batch[2][0] += len(entry)
        if now:
            self._flush_one(batch)
            handle = self._flush_handle
            if handle is not None and not any(b[1] for b in self._batches.values()):
                handle.cancel()  # nothing waits: a cancelled timer wakes nobody
                self._flush_handle = None
        elif self._flush_handle is None and self._active():
            self._flush_handle = asyncio.get_running_loop().call_later(BATCH_DELAY, self.flush)

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
