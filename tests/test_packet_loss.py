"""A lossy path (5% loss each way, 30±10 ms delay) recovers through NACK/RTX and PLI in packet
forwarding: real aiortc clients over loopback, each behind an emulated lossy link."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from sfu.config import Config
from sfu.headless.lossy import LossyLink

from .routing import pair_up

SIZE = {"width": 352, "height": 288, "fps": 15}
WINDOW = 8.0


@pytest.fixture
def config() -> Config:
    return Config(host="127.0.0.1", port=0, online_interval=0.2, forwarding="packet", rematch_cooldown=0.0)


async def test_lossy_path_recovers_without_freezing(server, make_client) -> None:
    a = await make_client(1, **SIZE)
    b = await make_client(2, **SIZE)
    await pair_up(a, b)
    links = [LossyLink(loss=0.05, delay=0.03, jitter=0.01, seed=seed) for seed in (1, 2)]
    for link, client in zip(links, (a, b)):
        link.attach(client.pc)  # type: ignore[arg-type]
    try:
        start = time.monotonic()
        await asyncio.sleep(WINDOW)
    finally:
        for link in links:
            await link.close()
    feeds = {c.sender_id: server.server.sessions[c.id].media.sources["video"] for c in (a, b)}
    streams = {c.sender_id: server.server.sessions[c.id].media.outbound["video"].stream for c in (a, b)}
    for watcher, publisher in ((a, 2), (b, 1)):
        frames = [f for f in watcher.frames_since(start) if f.stamp is not None and f.stamp.sender == publisher]
        gaps = [y.at - x.at for x, y in itertools.pairwise(frames)]
        unreadable = [f for f in watcher.frames_since(start) if f.stamp is None]
        loss = feeds[publisher].inbound.loss
        print(f"watcher {watcher.sender_id}: {len(frames)} frames in {WINDOW:.0f} s, longest gap "
              f"{max(gaps) * 1000:.0f} ms, {len(unreadable)} unreadable; upstream: {loss.recovered} recovered, "
              f"{loss.given_up} given up; resent to watcher: {streams[watcher.sender_id].history.resent}")
        assert len(frames) >= WINDOW * SIZE["fps"] / 3, f"only {len(frames)} frames"
        assert max(gaps) < 1.0, f"video froze for {max(gaps):.2f} s"
        assert loss.recovered > 0, "no upstream loss was repaired by retransmission"
        assert streams[watcher.sender_id].history.resent > 0, "no NACK of the watcher was answered"
    assert all(link.dropped > 0 for link in links)
