"""The light clients of ``benchmarks/replay.py``: connected like any client, their ready-made RTP is
forwarded by a real server (packet mode) to their partner, who counts it off the transport."""

from __future__ import annotations

import asyncio

import pytest

from benchmarks.replay import ReplayClient, stream
from sfu.config import Config


async def test_replayed_packets_reach_the_partner_and_are_counted(server) -> None:
    a, b = ReplayClient(server.url, 1), ReplayClient(server.url, 2)
    late: list[float] = []
    stop = asyncio.Event()
    streaming = asyncio.ensure_future(stream([a.media, b.media], late, stop))
    try:
        for client in (a, b):
            await client.connect()
        for client in (a, b):
            await client.wait_connected()
            await client.start()
        for client in (a, b):
            await client.expect("paired", timeout=30)
        # Each client hooked both of its senders (audio and video) before the offer.
        assert set(a.media.outputs) == set(b.media.outputs) == {"audio", "video"}
        deadline = asyncio.get_running_loop().time() + 20
        while min(a.media.counts().packets, b.media.counts().packets) < 150:
            assert asyncio.get_running_loop().time() < deadline, (a.media.counts(), b.media.counts())
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await streaming
        for client in (a, b):
            await client.close()
    for client, partner in ((a.media, b.media), (b.media, a.media)):
        counts = client.counts()
        kinds = {c.kind for c in client.counters if c.packets}
        assert kinds == {"audio", "video"}, f"only {kinds} came back"
        assert 0 < counts.packets <= counts.expected
        assert counts.packets <= partner.sent
        # Send times written into the audio payloads come back intact (same clock, both clients).
        assert counts.delays and all(0 <= d < 5 for d in counts.delays)


@pytest.fixture
def config() -> Config:
    """The packet path, whatever the default mode."""
    return Config(host="127.0.0.1", port=0, online_interval=0.2, forwarding="packet")
