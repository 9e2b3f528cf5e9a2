"""Packets timed at the socket (``testing.time_rtp`` through :class:`TimedPeer`) on a real peer
connection over loopback: every packet sent is logged once, in the clear, and found again on
arrival by its payload's end."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from sfu.loadtest.media import VideoSpec, encode_audio_loop, encode_video_loop
from sfu.loadtest.oneway import WINDOW, match
from sfu.loadtest.timed_peer import TimedPeer
from sfu.media.aiortc_hooks.packet_times import stamp_arrivals


async def test_two_peers_connected_directly_log_and_match_every_packet() -> None:
    spec = VideoSpec(width=160, height=120, fps=15, bitrate=150_000, loop_seconds=1.0)
    audio = encode_audio_loop()
    a = TimedPeer("a", encode_video_loop(1, spec), audio)
    b = TimedPeer("b", encode_video_loop(2, spec), audio, offset=0.5 / spec.fps)
    try:
        await a.connect_directly(b)
        deadline = time.monotonic() + 20
        while min(len(a.arrivals), len(b.arrivals)) < 60 or b.packets_received < 60:
            assert time.monotonic() < deadline, (len(a.arrivals), len(b.arrivals))
            await asyncio.sleep(0.1)
        since = time.time()
        await asyncio.sleep(1.0)
        until = time.time()
        await asyncio.sleep(WINDOW + 0.2)
    finally:
        await asyncio.gather(a.close(), b.close())
    for sender, receiver in ((a, b), (b, a)):
        assert {s.kind for s in sender.sent} == {"audio", "video"}
        assert all(x.at <= y.at for x, y in zip(sender.sent, sender.sent[1:])), "sent log out of order"
        found = match(sender.sent, receiver.arrivals, since=since, until=until)
        assert found.unmatched == 0 and found.lost == 0
        assert len(found.latencies["audio"]) >= 30 and len(found.latencies["video"]) >= 10
        # Sent is read before sendto, the kernel stamps the arrival during or after it.
        assert all(0 <= v < WINDOW for v in found.all())


async def test_an_arrival_is_stamped_when_it_reached_the_socket_not_when_it_was_read() -> None:
    loop = asyncio.get_running_loop()
    got: list[tuple[bytes, float, float]] = []  # datagram, stamp, when the protocol had it

    class Protocol(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple) -> None:
            got.append((data, stamps[-1][1], time.time()))

    stamps: list[tuple[bytes, float]] = []
    transport, protocol = await loop.create_datagram_endpoint(Protocol, local_addr=("127.0.0.1", 0))
    sender, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    try:
        protocol.transport = transport
        stamp_arrivals(SimpleNamespace(_protocols=[protocol]), lambda data, at: stamps.append((data, at)))
        before = time.time()
        sender.sendto(b"ping", transport.get_extra_info("sockname"))
        after = time.time()
        time.sleep(0.05)  # the event loop cannot read the datagram meanwhile
        deadline = time.monotonic() + 5
        while not got:
            assert time.monotonic() < deadline, "datagram never read"
            await asyncio.sleep(0.01)
    finally:
        transport.close()
        sender.close()
    data, at, read = got[0]
    assert data == b"ping" and stamps == [(b"ping", at)]
    assert before <= at <= after  # loopback queues the datagram during sendto
    assert read - at >= 0.05
