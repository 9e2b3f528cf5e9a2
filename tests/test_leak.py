"""300 join / next / leave cycles leave nothing behind: sessions, peer connections, tasks, threads,
file descriptors; memory stays bounded.

Each cycle is a real visit: WebSocket, offer/answer, ICE + DTLS over loopback, start, paired or
waiting, Next, then the client leaves. Clients send audio only (the server still sends its video
placeholder), ten at a time. Server and clients share this process, so the counts cover both.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from dataclasses import dataclass

import pytest
from aiortc import RTCPeerConnection

from sfu.config import Config
from sfu.headless.client import HeadlessClient
from sfu.media.peer import PeerMedia
from sfu.moderation.settings import ModerationSettings
from sfu.signaling.connection import Session

CYCLES = int(os.environ.get("LEAK_CYCLES", "300"))
#: LEAK_VIDEO=1: clients also send 160x120 video (heavier; the default run is audio only).
VIDEO = os.environ.get("LEAK_VIDEO") == "1"
BATCH = 10


@pytest.fixture
def config() -> Config:
    # Audio-only visitors are paired only when the server does not require a camera.
    return Config(host="127.0.0.1", port=0, online_interval=0.2, rematch_cooldown=0.0,
                  moderation=ModerationSettings(moderation_classifier="none", require_camera=VIDEO))


@dataclass
class Counts:
    tasks: int
    threads: int
    executor_threads: int
    fds: int
    peer_connections: int
    peer_media: int
    sessions: int
    rss_mb: float

    def __str__(self) -> str:
        return (
            f"tasks={self.tasks} threads={self.threads} (executor {self.executor_threads}) fds={self.fds} "
            f"RTCPeerConnection={self.peer_connections} PeerMedia={self.peer_media} Session={self.sessions} "
            f"RSS={self.rss_mb:.1f} MB"
        )


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def count() -> Counts:
    gc.collect()
    objects = gc.get_objects()
    threads = threading.enumerate()
    return Counts(
        tasks=len(asyncio.all_tasks()),
        threads=len(threads),
        executor_threads=sum(1 for t in threads if t.name.startswith("asyncio_")),
        fds=len(os.listdir("/proc/self/fd")),
        peer_connections=sum(1 for o in objects if isinstance(o, RTCPeerConnection)),
        peer_media=sum(1 for o in objects if isinstance(o, PeerMedia)),
        sessions=sum(1 for o in objects if isinstance(o, Session)),
        rss_mb=rss_mb(),
    )


async def visit(url: str, sender_id: int) -> None:
    client = HeadlessClient(url, sender_id, send_video=VIDEO, width=160, height=120, read_stamps=False)
    try:
        await client.connect(timeout=60)
        await client.wait_connected(timeout=60)
        await client.start()
        await client.expect("waiting", "paired", timeout=60)
        await client.next()
        await client.expect("waiting", "paired", timeout=60)
    finally:
        await client.close()


async def settle(server, baseline: Counts, timeout: float = 30.0) -> Counts:
    """Wait for asynchronous teardown (sockets, decoder threads) to finish, then count."""
    deadline = time.monotonic() + timeout
    while True:
        now = count()
        done = (
            not server.sessions
            and now.tasks <= baseline.tasks
            and now.threads - now.executor_threads <= baseline.threads - baseline.executor_threads
            and now.fds <= baseline.fds
            and now.peer_connections == 0
        )
        if done or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.2)


async def test_join_next_leave_cycles_leave_nothing_behind(server) -> None:
    srv = server.server
    await asyncio.gather(*(visit(server.url, i) for i in range(BATCH)))  # warm up pools and codecs
    baseline = await settle(srv, count(), timeout=10)
    started = time.monotonic()
    peak_rss = baseline.rss_mb
    pairs_before = srv.matchmaker.pairs_made
    trend = []
    for first in range(0, CYCLES, BATCH):
        await asyncio.gather(*(visit(server.url, 1000 + first + i) for i in range(BATCH)))
        peak_rss = max(peak_rss, rss_mb())
        if (first + BATCH) % 100 == 0:
            trend.append(f"{rss_mb():.0f}")
    took = time.monotonic() - started
    after = await settle(srv, baseline)
    print(
        f"\n{CYCLES} join/next/leave cycles in {took:.1f} s, {srv.matchmaker.pairs_made - pairs_before} pairs made"
        f"\n  before: {baseline}\n  after:  {after}\n  peak RSS during the run: {peak_rss:.1f} MB"
        f"\n  RSS (MB) after every 100 visits: {' '.join(trend)}"
    )
    assert srv.matchmaker.pairs_made - pairs_before >= CYCLES // 4
    assert not srv.sessions and srv.matchmaker.waiting_count == 0 and srv.matchmaker.paired_count == 0
    assert after.peer_connections == 0 and after.peer_media == 0 and after.sessions == 0
    assert after.tasks <= baseline.tasks
    assert after.threads - after.executor_threads <= baseline.threads - baseline.executor_threads
    assert after.executor_threads <= min(32, (os.cpu_count() or 1) + 4)  # the default executor's bound
    assert after.fds <= baseline.fds
    assert after.rss_mb - baseline.rss_mb < 150, "memory grew by more than 150 MB"
    if len(trend) >= 2:  # after the first 100 visits memory should plateau, not climb
        assert float(trend[-1]) - float(trend[0]) < 40, trend
    assert not srv.addresses.open and not srv.metrics._paired_at and not srv.metrics._looking_since
