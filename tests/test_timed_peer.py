"""Packets timed at the socket (``testing.time_rtp`` through :class:`TimedPeer`) on a real peer
connection over loopback: every packet sent is logged once, in the clear, and found again on
arrival by its payload's end."""

from __future__ import annotations

import asyncio
import time

from sfu.loadtest.media import VideoSpec, encode_audio_loop, encode_video_loop
from sfu.loadtest.oneway import WINDOW, match
from sfu.loadtest.timed_peer import TimedPeer


async def test_two_peers_connected_directly_log_and_match_every_packet() -> None:
    spec = VideoSpec(width=160, height=120, fps=15, bitrate=150_000, loop_seconds=1.0)
    audio = encode_audio_loop()
    clock = time.perf_counter
    a = TimedPeer("a", encode_video_loop(1, spec), audio, clock)
    b = TimedPeer("b", encode_video_loop(2, spec), audio, clock, offset=0.5 / spec.fps)
    try:
        await a.connect_directly(b)
        deadline = time.monotonic() + 20
        while min(len(a.arrivals), len(b.arrivals)) < 60 or b.packets_received < 60:
            assert time.monotonic() < deadline, (len(a.arrivals), len(b.arrivals))
            await asyncio.sleep(0.1)
        since = clock()
        await asyncio.sleep(1.0)
        until = clock()
        await asyncio.sleep(WINDOW + 0.2)
    finally:
        await asyncio.gather(a.close(), b.close())
    for sender, receiver in ((a, b), (b, a)):
        assert {s.kind for s in sender.sent} == {"audio", "video"}
        assert all(x.at <= y.at for x, y in zip(sender.sent, sender.sent[1:])), "sent log out of order"
        found = match(sender.sent, receiver.arrivals, since=since, until=until)
        assert found.unmatched == 0 and found.lost == 0
        assert len(found.latencies["audio"]) >= 30 and len(found.latencies["video"]) >= 10
        # Arrival is read after the sender's send returned, in the same process: never before.
        assert all(0 < v < WINDOW for v in found.all())
