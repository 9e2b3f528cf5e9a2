"""Several `sfu serve` processes (two nodes on two ports) sharing one pool through a real Redis:
headless clients paired across processes, Next, chat and partner_left across, the global online
count; a node killed with -9; Redis restarted under running pairs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from sfu.headless.client import HeadlessClient

from .redis_server import RedisServer, own_redis_server  # noqa: F401  (fixture)


def get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def until(probe: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def two_nodes(serve_process, own_redis_server: RedisServer, tmp_path):  # noqa: F811
    """Start nodes "a" and "b" on one Redis; returns their URLs and processes."""

    def start() -> list[tuple[str, Any]]:
        nodes = []
        for name in ("a", "b"):
            nodes.append(serve_process("--redis-url", own_redis_server.url, "--node-id", name,
                                       "--data-dir", str(tmp_path / name), "--online-interval", "0.2"))
        return nodes

    return start


async def wait_pool(url: str, processes: int) -> dict:
    return await until(lambda: (h := get_json(url + "/healthz")[1]).get("pool", {}).get("processes") == processes
                       and h, what=f"{processes} processes in the pool")


async def test_pairing_chat_next_and_partner_left_across_two_nodes(two_nodes) -> None:
    (url_a, _), (url_b, _) = two_nodes()
    health = await wait_pool(url_a, 2)
    assert health["node"] == "a" and health["worker"] == "0"
    a, b, c = HeadlessClient(url_a, 1), HeadlessClient(url_b, 2), HeadlessClient(url_b, 3)
    try:
        await a.connect()
        await b.connect()
        await until(lambda: a.messages("online") and a.messages("online")[-1]["count"] == 2, what="online 2 on a")
        await until(lambda: b.messages("online")[-1]["count"] == 2, what="online 2 on b")
        await a.start()
        await b.start()
        assert (await a.expect("paired"))["partner"] == b.id
        assert (await b.expect("paired"))["partner"] == a.id
        # Media crosses through the pipe: each gets the other's stamped pictures, and sound.
        await a.wait_frame_from(2, timeout=15)
        await b.wait_frame_from(1, timeout=15)
        audio = a.received.audio_frames
        await until(lambda: a.received.audio_frames > audio + 10, what="b's sound on node a")
        await a.chat("hello from node a")
        assert (await b.expect("chat"))["text"] == "hello from node a"
        await b.chat("hi from node b")
        assert (await a.expect("chat"))["text"] == "hi from node b"
        health = get_json(url_b + "/healthz")[1]
        assert health["participants"] == {"connected": 1, "waiting": 0, "paired": 1}
        await until(lambda: get_json(url_a + "/healthz")[1]["pool"]["participants"]["paired"] == 2, what="pool counts")

        await c.connect()
        await c.start()
        await c.expect("waiting")
        await a.next()  # a leaves b: b (node b) is told across; c, waiting, meets one of them
        await b.expect("partner_left")
        await until(lambda: a.messages("online")[-1]["count"] == 3, what="online 3")
        if (await c.expect("paired"))["partner"] == b.id:  # b and c on node b; then b leaves
            await a.expect("waiting")
            await b.close()
            await c.expect("partner_left")
            assert (await c.expect("paired"))["partner"] == a.id
        assert (await a.expect("paired"))["partner"] == c.id  # a (node a) with c (node b)
        switched = time.monotonic()
        await a.wait_frame_from(3, since=switched, timeout=15)  # the new partner, across the nodes
        await c.wait_frame_from(1, since=switched, timeout=15)
        late = [f for f in a.frames_since(switched + 1.0) if f.stamp is not None and f.stamp.sender != 3]
        assert not late, f"a got someone else's picture a second after meeting c: {late[:3]}"
        await c.chat("across again")
        assert (await a.expect("chat"))["text"] == "across again"
    finally:
        for x in (a, b, c):
            await x.close()


async def test_a_node_killed_its_partners_elsewhere_are_told_and_requeued(two_nodes) -> None:
    (url_a, _), (url_b, proc_b) = two_nodes()
    await wait_pool(url_a, 2)
    a, b = HeadlessClient(url_a, 1), HeadlessClient(url_b, 2)
    a2 = HeadlessClient(url_a, 3)
    try:
        await a.connect()
        await b.connect()
        await a.start()
        await b.start()
        assert (await a.expect("paired"))["partner"] == b.id
        os.kill(proc_b.pid, signal.SIGKILL)
        killed = time.monotonic()
        await a.expect("partner_left", timeout=15)
        took = time.monotonic() - killed
        print(f"\n[cluster] kill -9 of a node -> partner_left on the other: {took:.2f} s")
        assert took < 8  # heartbeats live 3 s, checked every second
        await a.expect("waiting")
        await a2.connect()
        await a2.start()
        assert (await a.expect("paired"))["partner"] == a2.id  # re-queued: pairs again
        await wait_pool(url_a, 1)
    finally:
        for x in (a, a2):
            await x.close()
        await b.close()


async def test_redis_restarted_pairs_go_on_and_pairing_resumes(two_nodes, own_redis_server: RedisServer) -> None:  # noqa: F811
    (url_a, _), (url_b, _) = two_nodes()
    await wait_pool(url_a, 2)
    a1, a2, b1 = HeadlessClient(url_a, 1), HeadlessClient(url_a, 2), HeadlessClient(url_b, 3)
    b2 = HeadlessClient(url_b, 4)
    near, far = HeadlessClient(url_a, 5), HeadlessClient(url_b, 6)  # a pair across the two nodes
    try:
        for x in (a1, a2, b1, b2, near, far):
            await x.connect()
        await a1.start()
        await a2.start()
        assert (await a1.expect("paired"))["partner"] == a2.id
        await a2.expect("paired")
        await a1.wait_frame_from(2)
        await near.start()
        await far.start()
        assert (await near.expect("paired"))["partner"] == far.id
        await far.wait_frame_from(5)

        own_redis_server.stop()
        down = time.monotonic()
        await until(lambda: get_json(url_a + "/readyz") == (503, {"ready": False, "reason": "pairing unavailable"}),
                    what="/readyz 503")
        await b1.start()
        error = await b1.expect("error")
        assert error["code"] == "pairing_unavailable"
        frame = await a1.wait_frame_from(2, since=time.monotonic())  # the pair keeps streaming
        assert frame.at > down
        await a1.chat("still here")
        assert (await a2.expect("chat"))["text"] == "still here"
        await far.wait_frame_from(5, since=time.monotonic())  # media across keeps streaming too
        await near.chat("typed during the outage")  # across: waits for Redis, then arrives
        await asyncio.sleep(1.0)
        assert "chat" not in [m[1].get("type") for m in far.received.messages]  # Redis is still away

        own_redis_server.start()  # empty: the pool was lost
        assert (await far.expect("chat", timeout=20))["text"] == "typed during the outage"
        await until(lambda: get_json(url_a + "/readyz")[0] == 200, what="/readyz 200 again")
        await until(lambda: get_json(url_b + "/readyz")[0] == 200, what="/readyz 200 again on b")
        await b1.start()
        await b1.expect("waiting")
        await b2.start()
        assert (await b1.expect("paired"))["partner"] == b2.id
        await a1.wait_frame_from(2, since=time.monotonic())  # the pair formed before goes on

        await a1.next()  # the pool no longer knows this pair: its other half is told by its process
        await a2.expect("partner_left")
        await a2.expect("waiting", "paired")
    finally:
        for x in (a1, a2, b1, b2, near, far):
            await x.close()
