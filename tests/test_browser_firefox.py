"""Firefox ESR and Chromium together against ``sfu serve --forwarding packet``: ten quick Nexts among
two Firefox users and one Chromium user; the pairs alternate Firefox-Chromium and Firefox-Firefox.
Each user's camera is a plain colour of their own, so after each Next both new partners are seen to
decode each other's picture (neither the previous partner's nor the grey placeholder), and audio;
and no picture stays frozen for a second while they are paired: the decoded frame count, polled
every 100 ms, never stands still that long. (Freeze statistics are not used: Chromium adds a freeze
when it ends, so the grey placeholder's 2 fps before a pairing is counted inside the paired window.)

Firefox is driven over WebDriver BiDi (``tests/firefox_bidi.py``). It gathers host candidates on the
machine's own non-loopback interfaces only; its checks reach the server's 127.0.0.1 candidate from
there and the server answers to that same local address, so nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
import urllib.request
from typing import Any

import pytest

if os.environ.get("SFU_SKIP_BROWSER") == "1":
    pytest.skip("real-browser tests disabled by SFU_SKIP_BROWSER=1", allow_module_level=True)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser_helpers as bh
from firefox_bidi import FIREFOX, Firefox
from playwright.async_api import async_playwright

WAIT_S = bh.WAIT_MS / 1000
#: Each user's camera: a plain colour (a white bar moving across it), so a watcher can tell whose
#: picture it decodes; the server's placeholder is grey.
COLOURS = {"ann": (220, 40, 40), "ben": (40, 40, 220), "cid": (40, 200, 40)}

#: Replaces the camera with a 320x240 canvas of the user's colour at 15 fps (the microphone stays the browser's
#: fake one), before the page's own scripts run.
CAMERA_SCRIPT = """
const colour = %s;
const devices = navigator.mediaDevices;
if (devices && devices.getUserMedia) {
  const original = devices.getUserMedia.bind(devices);
  devices.getUserMedia = async (constraints) => {
    const wanted = constraints || {};
    const stream = wanted.audio ? await original({audio: wanted.audio, video: false}) : new MediaStream();
    if (!wanted.video) return stream;
    const canvas = document.createElement('canvas');
    canvas.width = 320; canvas.height = 240;
    const g = canvas.getContext('2d');
    let x = 0;
    const draw = () => {
      g.fillStyle = `rgb(${colour.join(',')})`; g.fillRect(0, 0, 320, 240);
      g.fillStyle = '#fff'; g.fillRect(x, 0, 16, 240); x = (x + 8) %% 320;
    };
    draw();
    setInterval(draw, 66);
    stream.addTrack(canvas.captureStream(15).getVideoTracks()[0]);
    return stream;
  };
}
"""

#: The mean colour of the partner's picture (a 64x48 sample), or null before the first frame.
JS_REMOTE_COLOUR = """() => {
  const v = document.querySelector('#remote-video');
  if (!v || !v.videoWidth) return null;
  const c = document.createElement('canvas');
  c.width = 64; c.height = 48;
  const g = c.getContext('2d', {willReadFrequently: true});
  g.drawImage(v, 0, 0, 64, 48);
  const d = g.getImageData(0, 0, 64, 48).data;
  const sum = [0, 0, 0];
  for (let i = 0; i < d.length; i += 4) { sum[0] += d[i]; sum[1] += d[i + 1]; sum[2] += d[i + 2]; }
  return sum.map((s) => s / (d.length / 4));
}"""


def metric(text: str, name: str) -> float:
    """One sample's value from the server's /metrics text (0 if absent)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def server_side(url: str) -> str:
    """Mean paired -> first forwarded frame and event-loop lag, as the server measured them."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    frames = metric(text, "sfu_time_to_first_frame_seconds_count")
    first = metric(text, "sfu_time_to_first_frame_seconds_sum") / max(1.0, frames)
    lags = metric(text, "sfu_event_loop_lag_seconds_count")
    lag = metric(text, "sfu_event_loop_lag_seconds_sum") / max(1.0, lags)
    return f"paired -> first frame sent {first * 1000:.0f} ms (mean of {frames:.0f}), event-loop lag {lag * 1000:.1f} ms"


def whose(colour: list[float] | None) -> str | None:
    """The user whose camera colour this mean colour is (``None``: grey, or nobody's)."""
    if not colour:
        return None
    channel = max(range(3), key=lambda i: colour[i])
    if colour[channel] - sorted(colour)[1] < 60:
        return None  # no dominant channel: the grey placeholder
    return next(name for name, rgb in COLOURS.items() if max(range(3), key=lambda i: rgb[i]) == channel)

JS_STATS = """async () => {
  const pc = window.sfu && window.sfu.pc;
  if (!pc) return null;
  const out = {};
  (await pc.getStats()).forEach((s) => {
    if (s.type === 'outbound-rtp' && s.kind === 'video') out.sent = {packets: s.packetsSent || 0, frames: s.framesEncoded || 0};
    if (s.type === 'inbound-rtp') out[s.kind] = {packets: s.packetsReceived || 0, frames: s.framesDecoded || 0,
      lost: s.packetsLost || 0, nacks: s.nackCount || 0, plis: s.pliCount || 0, firs: s.firCount || 0};
  });
  return out;
}"""


class Participant:
    """One user's page in either browser: JavaScript in, JSON-able values out."""

    def __init__(self, name: str, page: Any, firefox: bool) -> None:
        self.name = name
        self.page = page
        self.firefox = firefox

    async def js(self, function: str, arg: Any = None) -> Any:
        if self.firefox:
            return await self.page.js(function, arg)
        return await self.page.evaluate(function, arg)

    async def wait_js(self, function: str, arg: Any = None, timeout: float = WAIT_S) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = await self.js(function, arg)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: timed out waiting for {function!r}: {await self.debug()}")
            await asyncio.sleep(0.1)

    async def debug(self) -> Any:
        return await self.js("""async () => { const v = document.querySelector('#remote-video');
          return {state: window.sfu.state, id: window.sfu.id, partner: window.sfu.partner,
                  pc: window.sfu.pc && window.sfu.pc.connectionState, video: [v.videoWidth, v.videoHeight],
                  stats: await (""" + JS_STATS + """)()}; }""")

    async def state(self) -> str:
        return await self.js("() => window.sfu.state")

    async def partner(self) -> str | None:
        return await self.js("() => window.sfu.partner")

    async def click(self, selector: str) -> None:
        await self.js("(s) => document.querySelector(s).click()", selector)

    async def stats(self) -> dict:
        return await self.js(JS_STATS)


async def wait_picture_of(user: Participant, partner: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while (seen := whose(await user.js(JS_REMOTE_COLOUR))) != partner:
        if time.monotonic() > deadline:
            raise AssertionError(f"{user.name} shows {seen}'s picture, not {partner}'s: {await user.debug()}")
        await asyncio.sleep(0.05)


async def watch_while_paired(user: Participant, seconds: float) -> tuple[float, dict, dict]:
    """The longest time without a newly decoded frame over ``seconds``, and the stats before/after."""
    first = last = await user.stats()
    longest, since = 0.0, time.monotonic()
    end = since + seconds
    while time.monotonic() < end:
        await asyncio.sleep(0.1)
        now = await user.stats()
        if now["video"]["frames"] > last["video"]["frames"]:
            since = time.monotonic()
        longest = max(longest, time.monotonic() - since)
        last = now
    return longest, first, last


@pytest.fixture(scope="module")
def server():
    for path, package in ((FIREFOX, "firefox-esr"), (bh.CHROMIUM, "chromium")):
        if not shutil.which(path):
            pytest.fail(f"{path} is missing: apt-get install -y --no-install-recommends {package}")
    srv = bh.ServerProcess(log_name="browser-firefox-server.log",
                           extra_args=("--forwarding", "packet", "--rematch-cooldown", "0")).start()
    yield srv
    srv.stop()


async def test_firefox_and_chromium_ten_quick_nexts(server) -> None:
    url = server.url.replace("127.0.0.1", "localhost") + "/"  # a secure context for getUserMedia
    firefoxes: list[Firefox] = []
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=bh.CHROMIUM, args=bh.CHROMIUM_ARGS, headless=True)
        try:
            users = []
            for name in ("ann", "ben"):
                firefox = await Firefox(log_path=str(bh.ARTIFACTS / f"firefox-{name}.log")).start()
                firefoxes.append(firefox)
                page = await firefox.page(url, init_script=CAMERA_SCRIPT % list(COLOURS[name]))
                users.append(Participant(name, page, firefox=True))
            context = await chromium.new_context()
            await context.add_init_script(CAMERA_SCRIPT % list(COLOURS["cid"]))
            page = await context.new_page()
            await page.goto(url)
            users.append(Participant("cid", page, firefox=False))
            for user in users:  # connected, then agree to the service's rules in their dialog
                await user.wait_js("() => !!window.sfu && window.sfu.negotiated === true")
                await user.wait_js("() => !!document.querySelector('#rules-dialog[open]')")
                await user.click("#rules-accept")
                await user.wait_js("() => window.sfu.rulesAccepted === true")
                await user.click("#start")
            deadline = time.monotonic() + WAIT_S
            while sum([await u.state() == "paired" for u in users]) < 2:
                assert time.monotonic() < deadline, "nobody paired"
                await asyncio.sleep(0.1)

            delays: list[float] = []
            stalls: list[tuple[str, float, float]] = []
            users = [users[0], users[2], users[1]]  # ann, cid, ben: pairs alternate Firefox-Chromium / Firefox-Firefox
            for _ in range(10):
                states = [await u.state() for u in users]
                presser = next(u for u, s in zip(users, states) if s == "paired")
                before = {u.name: await u.partner() for u in users}
                started = time.monotonic()
                await presser.click("#next")
                others = [u for u in users if u is not presser]
                for user in others:
                    await user.wait_js("(old) => window.sfu.state === 'paired' && window.sfu.partner !== old",
                                       before[user.name])
                for user in others:  # the new partner's camera: neither the old one's nor the placeholder
                    partner = next(u for u in others if u is not user)
                    await wait_picture_of(user, partner.name)
                delays.append(time.monotonic() - started)
                watched = await asyncio.gather(*(watch_while_paired(u, 1.5) for u in others))
                for user, (longest, then, now) in zip(others, watched):
                    assert now["video"]["frames"] > then["video"]["frames"], (user.name, then, now, watched)
                    assert now["audio"]["packets"] > then["audio"]["packets"], (user.name, then, now)
                    delta = {k: now["video"][k] - then["video"][k] for k in ("packets", "frames", "lost", "nacks", "plis")}
                    stalls.append((user.name, round(longest, 2), delta))
                await presser.wait_js("() => ['waiting', 'paired'].includes(window.sfu.state)")
            final = {u.name: await u.stats() for u in users}
            shown = ", ".join(f"{d * 1000:.0f}" for d in delays)
            print(f"\nFirefox+Chromium, packet: Next -> partner camera (incl. polling): {shown} ms")
            print(f"longest wait for a frame while paired (s), and video counters: {stalls}")
            print(f"inbound stats: {final}")
            print(f"server: {server_side(server.url)}")
            assert max(longest for _, longest, _ in stalls) < 1.0, f"video froze while paired: {stalls}"
            status = bh.http_json(server.url + "/healthz")
            assert status["directions"]["video"].get("packet", 0) == 2, status
        finally:
            for firefox in firefoxes:
                await firefox.close()
            await chromium.close()
