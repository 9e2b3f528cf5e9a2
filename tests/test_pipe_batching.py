"""How media entries bound for other processes are grouped into datagrams (pipe/batching.py), on a
real event loop: with no window a picture leaves with its last packet and a sound at once; with a
window everything waiting for one process leaves together when it closes, repairs at once."""

from __future__ import annotations

import asyncio

import pytest

from sfu.media.pipe import messages
from sfu.media.pipe.batching import BATCH_BYTES_NETWORK, LEFTOVER_DELAY, MediaBatches
from sfu.media.pipe.peer import PipePeer
from sfu.media.pipe.wire import new_key

ONE = PipePeer(("127.0.0.1", 40001), new_key())
TWO = PipePeer(("127.0.0.1", 40002), new_key())
FAR = PipePeer(("10.0.0.7", 40003), new_key())


def packet(sequence: int, size: int = 100) -> bytes:
    return bytes([0x80, 96]) + sequence.to_bytes(2, "big") + bytes(size - 4)


class Wire:
    """What the batches sent: (peer, [(tag, packet), ...]) per datagram."""

    def __init__(self) -> None:
        self.datagrams: list[tuple[PipePeer, list[tuple[int, bytes]]]] = []

    def send(self, peer: PipePeer, body: bytes) -> None:
        self.datagrams.append((peer, messages.open_media(body)))


def add(batches: MediaBatches, peer: PipePeer, tag: int, sequence: int, ends: bool = False,
        repair: bool = False, size: int = 100) -> bytes:
    data = packet(sequence, size)
    batches.add(peer, messages.entry_header(tag, len(data)), data, ends, repair)
    return data


async def test_without_a_window_a_picture_leaves_with_its_last_packet_and_a_sound_at_once() -> None:
    wire = Wire()
    batches = MediaBatches(wire.send, lambda: True, 0.0)
    first, second = add(batches, ONE, 7, 1), add(batches, ONE, 7, 2)
    assert wire.datagrams == []
    last = add(batches, ONE, 7, 3, ends=True)
    assert wire.datagrams == [(ONE, [(7, first), (7, second), (7, last)])]
    sound = add(batches, ONE, 8, 50, ends=True)
    assert wire.datagrams[-1] == (ONE, [(8, sound)])
    orphan = add(batches, TWO, 7, 4)  # a picture whose last packet never comes
    await asyncio.sleep(LEFTOVER_DELAY * 10)
    assert wire.datagrams[-1] == (TWO, [(7, orphan)])
    assert len(wire.datagrams) == 3


async def test_with_a_window_everything_for_one_process_shares_a_datagram() -> None:
    wire = Wire()
    batches = MediaBatches(wire.send, lambda: True, 0.02)
    sent = {ONE: [(7, add(batches, ONE, 7, 1)), (7, add(batches, ONE, 7, 2, ends=True)),
                  (8, add(batches, ONE, 8, 9, ends=True))],
            TWO: [(9, add(batches, TWO, 9, 5, ends=True))]}
    sent[ONE].append((11, add(batches, ONE, 11, 3, ends=True)))  # another publisher, same process
    assert wire.datagrams == []  # pictures' ends and sounds wait for the window
    await asyncio.sleep(0.1)
    assert sorted(wire.datagrams, key=lambda d: d[0].address) == [(ONE, sent[ONE]), (TWO, sent[TWO])]


async def test_a_repair_leaves_at_once_with_what_waits_and_the_timer_is_dropped() -> None:
    wire = Wire()
    batches = MediaBatches(wire.send, lambda: True, 0.05)
    waiting = add(batches, ONE, 7, 1)
    repair = add(batches, ONE, 7, 0, repair=True)
    assert wire.datagrams == [(ONE, [(7, waiting), (7, repair)])]
    await asyncio.sleep(0.1)
    assert len(wire.datagrams) == 1  # nothing left, nothing sent twice


async def test_a_batch_that_would_outgrow_a_datagram_leaves_early() -> None:
    wire = Wire()
    batches = MediaBatches(wire.send, lambda: True, 0.05)
    entries = [(7, add(batches, FAR, 7, i, size=500)) for i in range(5)]
    assert all(len(b"".join(messages.entry_header(t, len(p)) + p for t, p in d[1])) <= BATCH_BYTES_NETWORK
               for d in wire.datagrams)
    batches.flush()
    assert [e for _, d in wire.datagrams for e in d] == entries  # in order, none lost
    assert len(wire.datagrams) == 3  # 2 + 2 + 1 packets of 506 bytes under a 1,400-byte limit


async def test_a_peer_that_changed_key_gets_what_was_for_the_old_one_first() -> None:
    wire = Wire()
    batches = MediaBatches(wire.send, lambda: True, 0.05)
    old = add(batches, ONE, 7, 1)
    renewed = PipePeer(ONE.address, new_key())
    new = add(batches, renewed, 7, 2)
    assert wire.datagrams == [(ONE, [(7, old)])]
    batches.flush()
    assert wire.datagrams[-1] == (renewed, [(7, new)])


def test_a_negative_window_is_refused() -> None:
    with pytest.raises(ValueError):
        MediaBatches(Wire().send, lambda: True, -0.001)
