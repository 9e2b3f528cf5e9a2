"""A real browser on one node meets headless clients on another: two ``sfu serve --redis-url`` processes
(nodes "a" and "b" on two ports) share one pool through a real ``redis-server``, and every picture and
sound between the browser and its partner crosses the encrypted media pipe between them.

The browser (Debian Chromium, fake camera and microphone) is on node a; stamped headless clients are
on node b. The page decodes the partner's stamped picture and reads the stamp back (the same reader
as ``sfu.headless.stamp``, in JavaScript), so it knows whose picture it shows; the headless client
receives the browser's camera and sound. Chat goes both ways; Next from the browser brings a second
client of node b, whose picture then replaces the first one's.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

if os.environ.get("SFU_SKIP_BROWSER") == "1":
    pytest.skip("real-browser tests disabled by SFU_SKIP_BROWSER=1", allow_module_level=True)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser_helpers as bh  # noqa: E402
from browser_helpers import ThreadedHeadlessClient, User  # noqa: E402

from .redis_server import RedisServer, own_redis_server  # noqa: E402, F401  (fixture)

#: The stamp reader of ``sfu.headless.stamp`` for the page: samples a 3x3 grid in each of the
#: 4 x 24 cells of the band at the top of ``#remote-video`` (at its own size), thresholds the cell
#: means halfway between the darkest and brightest one, checks the sync word and the CRC-16 and
#: returns the sender's id, or null when there is no readable stamp (a camera, the grey placeholder).
JS_REMOTE_STAMP = """() => {
  const ROWS = 4, COLS = 24, DIV = 16, OFFSETS = [0.3, 0.5, 0.7], SYNC = 0xC5A3;
  const v = document.querySelector('#remote-video');
  if (!v || !v.videoWidth || !v.videoHeight) return null;
  const w = v.videoWidth, h = v.videoHeight;
  const c = document.createElement('canvas');
  c.width = w; c.height = h;
  const g = c.getContext('2d', {willReadFrequently: true});
  g.drawImage(v, 0, 0, w, h);
  const d = g.getImageData(0, 0, w, Math.ceil(h * ROWS / DIV) + 1).data;
  const means = [];
  for (let r = 0; r < ROWS; r++) for (let col = 0; col < COLS; col++) {
    let sum = 0;
    for (const oy of OFFSETS) for (const ox of OFFSETS) {
      const y = Math.floor((r + oy) * h / DIV), x = Math.floor((col + ox) * w / COLS);
      const i = (y * w + x) * 4;
      sum += 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
    }
    means.push(sum / 9);
  }
  const lo = Math.min(...means), hi = Math.max(...means), contrast = hi - lo;
  if (contrast < 64) return null;
  const threshold = (lo + hi) / 2;
  if (means.some((m) => Math.abs(m - threshold) < 0.2 * contrast)) return null;
  const bytes = [];
  for (let b = 0; b < 12; b++) {
    let byte = 0;
    for (let k = 0; k < 8; k++) byte = (byte << 1) | (means[b * 8 + k] > threshold ? 1 : 0);
    bytes.push(byte);
  }
  let crc = 0xFFFF;
  for (const byte of bytes.slice(2, 10)) {
    crc ^= byte << 8;
    for (let k = 0; k < 8; k++) crc = (crc & 0x8000) ? ((crc << 1) ^ 0x1021) & 0xFFFF : (crc << 1) & 0xFFFF;
  }
  if (((bytes[0] << 8) | bytes[1]) !== SYNC || ((bytes[10] << 8) | bytes[11]) !== crc) return null;
  return (bytes[2] << 8) | bytes[3];
}"""

#: Counts the frames the page presents in ``#remote-video`` (requestVideoFrameCallback).
JS_COUNT_FRAMES = """() => {
  const v = document.querySelector('#remote-video');
  window.__presented = 0;
  const tick = () => { window.__presented++; v.requestVideoFrameCallback(tick); };
  v.requestVideoFrameCallback(tick);
}"""


def wait_until(predicate: Any, timeout_s: float, message: Any) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(message() if callable(message) else message)
        time.sleep(0.1)


@pytest.fixture
def nodes(own_redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[bh.ServerProcess, bh.ServerProcess]]:  # noqa: F811
    started: list[bh.ServerProcess] = []
    try:
        for name in ("a", "b"):
            started.append(bh.ServerProcess(
                log_name=f"browser-cluster-{name}.log",
                extra_args=("--redis-url", own_redis_server.url, "--node-id", name, "--data-dir",
                            str(tmp_path / name), "--online-interval", "0.2"),
            ).start())
        wait_until(lambda: bh.http_json(started[0].url + "/healthz").get("pool", {}).get("processes") == 2, 20,
                   "the two nodes never saw each other in the pool")
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    yield from bh.chromium()


def test_browser_on_one_node_meets_headless_clients_on_another(nodes, browser) -> None:
    node_a, node_b = nodes
    first, second = (ThreadedHeadlessClient(node_b.url, n, width=320, height=240, fps=15) for n in (1, 2))
    user = User(browser, node_a.url, "browser on node a")
    try:
        first.run(first.client.connect())
        first.run(first.client.start())
        first.run(first.client.expect("waiting"))
        user.open()
        user.wait_js("() => Number(document.querySelector('#online').dataset.count) === 2")
        user.page.click("#start")
        user.wait_state("paired")
        assert user.partner == first.client.id
        assert first.run(first.client.expect("paired"))["partner"] == user.id

        # node b -> node a: the browser decodes the first client's stamped 320x240 picture.
        user.js(JS_COUNT_FRAMES)
        user.wait_js("() => document.querySelector('#remote-video').videoWidth === 320")
        before, after = user.wait_video_decoding()
        assert after["framesDecoded"] > before["framesDecoded"] > 0
        user.wait_js(f"() => ({JS_REMOTE_STAMP})() === 1")
        user.wait_js("() => window.__presented > 10")

        # node a -> node b: the browser's camera (640x480, no stamp) and its sound reach the client.
        def camera_frames(bot: ThreadedHeadlessClient) -> int:
            return sum(1 for f in bot.client.received.frames if (f.width, f.height) == (640, 480))

        wait_until(lambda: camera_frames(first) >= 10, 30, lambda: f"client 1 got {camera_frames(first)} camera frames")
        assert all(f.stamp is None for f in first.client.received.frames if (f.width, f.height) == (640, 480))
        heard = first.client.received.audio_frames
        wait_until(lambda: first.client.received.audio_frames > heard + 25, 20, "no sound from the browser")
        wait_until(lambda: first.client.received.audio_loud_frames > 0, 20, "only silence from the browser")

        # Each node's /healthz shows the one piped direction it receives and the one it sends.
        for node in (node_a, node_b):
            pipe = bh.http_json(node.url + "/healthz")["pipe"]
            assert (pipe["imports"], pipe["exports"]) == (1, 1), pipe
            assert pipe["packets_received"]["video"] > 0 and pipe["packets_sent"]["audio"] > 0, pipe

        # Chat both ways, across the nodes.
        user.send_chat("hello from node a")
        assert first.run(first.client.expect("chat"))["text"] == "hello from node a"
        first.run(first.client.chat("hi from node b"))
        user.wait_js("() => document.querySelector('#chat-log').textContent.includes('hi from node b')")

        # The second client waits for someone who shares its interest (and no one else); the browser
        # names that interest and presses Next: the first client is left (and waits on), the browser
        # meets the second one, on node b too, without a new peer connection.
        second.run(second.client.connect())
        second.run(second.client.start(interests=["pipes"], strict=True))
        second.run(second.client.expect("waiting"))
        user.page.fill("#interest-input", "pipes")
        user.page.press("#interest-input", "Enter")
        pcs = user.js("() => window.sfu.pcCount")
        user.page.click("#next")
        assert first.run(first.client.expect("partner_left"))["type"] == "partner_left"
        user.wait_js("(id) => window.sfu.partner === id", second.client.id)
        user.wait_state("paired")
        assert second.run(second.client.expect("paired"))["partner"] == user.id
        assert user.js("() => window.sfu.pcCount") == pcs
        user.wait_js(f"() => ({JS_REMOTE_STAMP})() === 2")
        seen = user.js("() => window.__presented")
        user.wait_js("(n) => window.__presented > n + 10", seen)
        readings = []
        for _ in range(5):  # from now on only the new partner's picture
            readings.append(user.js(JS_REMOTE_STAMP))
            time.sleep(0.2)
        assert set(readings) <= {2, None} and 2 in readings, readings
        wait_until(lambda: camera_frames(second) >= 10, 30, lambda: f"client 2 got {camera_frames(second)} camera frames")
        second.run(second.client.chat("second hello"))
        user.wait_js("() => document.querySelector('#chat-log').textContent.includes('second hello')")
        assert first.run(first.client.expect("waiting"))["type"] == "waiting"  # left, re-queued, alone
    except Exception:
        print(bh.debug_all(user), f"\nnode a:\n{node_a.log_tail()}\nnode b:\n{node_b.log_tail()}")
        raise
    finally:
        user.close()
        first.close()
        second.close()
