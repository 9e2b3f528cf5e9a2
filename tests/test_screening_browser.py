"""Automatic detection in real headless Chromium: the "video hidden" cover on the partner's side and
the notice to the person whose video was hidden, with the test classifier (a magenta marker) in a
``sfu serve`` process."""

from __future__ import annotations

import os
import sys

import pytest

if os.environ.get("SFU_SKIP_BROWSER") == "1":
    pytest.skip("real-browser tests disabled by SFU_SKIP_BROWSER=1", allow_module_level=True)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser_helpers as bh  # noqa: E402
from browser_helpers import WAIT_MS, ThreadedHeadlessClient  # noqa: E402

#: A camera showing the marker: getUserMedia answers with a canvas painted magenta.
MAGENTA_CAMERA = """
Object.defineProperty(navigator.mediaDevices, 'getUserMedia', {
  configurable: true,
  value: async () => {
    const canvas = document.createElement('canvas');
    canvas.width = 320; canvas.height = 240;
    const g = canvas.getContext('2d');
    let tick = 0;
    const draw = () => {
      g.fillStyle = '#ff00ff'; g.fillRect(0, 0, 320, 240);
      g.fillStyle = '#202020'; g.fillRect((tick++ * 5) % 300, 0, 20, 12);
    };
    draw(); setInterval(draw, 66);
    return canvas.captureStream(15);
  },
});
"""


@pytest.fixture(scope="module")
def server():
    srv = bh.ServerProcess(
        log_name="browser-moderation-server.log",
        moderation={"moderation_classifier": "marker", "moderation_interval": 1.0},
    ).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    yield from bh.chromium()


@pytest.fixture
def users(browser, server):
    yield from bh.user_factory(browser, server)


def test_the_partner_sees_video_hidden_and_can_press_next(users, server):
    bot = ThreadedHeadlessClient(server.url, 77, width=320, height=240, fps=15)
    try:
        bot.run(bot.client.connect())
        bot.run(bot.client.wait_connected())
        bot.run(bot.client.start())
        user = users("erin").open()
        user.page.click("#start")
        user.wait_state("paired")
        user.wait_video_decoding()
        user.wait_js("() => document.querySelector('#remote').dataset.visible === 'true'")

        bot.run(_show_marker(bot.client))
        user.page.wait_for_selector("#remote[data-moderation='hidden']", state="attached", timeout=WAIT_MS)
        assert user.page.get_attribute("#remote", "data-visible") == "false"
        # The cover's texts come with the attribute; wait for them rather than read them at once (a
        # page starved of CPU may still be applying its language's strings).
        user.wait_js("() => document.querySelector('#overlay-title').innerText === 'Video hidden'")
        user.wait_js("() => document.querySelector('#overlay-hint').innerText.includes('Next')")
        assert bot.run(bot.client.expect("moderation"))["action"] == "video_hidden"
        user.page.screenshot(path=str(_artifact("moderation-partner-hidden.png")))

        # Next still works and the cover belongs to the conversation that ended.
        user.page.click("#next")
        user.wait_state("waiting", "paired")
        assert user.page.get_attribute("#remote", "data-moderation") is None
    finally:
        bot.close()


def test_the_person_whose_video_is_hidden_is_told_why(users, server):
    bot = ThreadedHeadlessClient(server.url, 78, width=320, height=240, fps=15)
    try:
        bot.run(bot.client.connect())
        bot.run(bot.client.wait_connected())
        bot.run(bot.client.start())
        user = users("frank", init_script=MAGENTA_CAMERA).open()
        user.page.click("#start")
        user.wait_state("paired")
        user.page.wait_for_selector("#notice[data-kind='moderation']", state="visible", timeout=WAIT_MS)
        text = user.page.inner_text("#notice")
        assert "hidden" in text and "nudity" in text, text
        assert user.page.get_attribute("#notice", "data-code") == "nudity"
        told = bot.run(bot.client.expect("moderation"))
        assert told == {"type": "moderation", "action": "partner_hidden", "reason": "nudity"}
        user.page.screenshot(path=str(_artifact("moderation-video-hidden.png")))
    finally:
        bot.close()


async def _show_marker(client) -> None:
    client.show_marker()


def _artifact(name: str):
    bh.ARTIFACTS.mkdir(exist_ok=True)
    return bh.ARTIFACTS / name
