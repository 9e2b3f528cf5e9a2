"""Real headless Chromium (system /usr/bin/chromium driven by Playwright) against ``sfu serve``.

Each user is a separate browser context with its own fake camera and microphone. The server runs
as a subprocess on a free loopback port. Set SFU_SKIP_BROWSER=1 to skip these tests; a missing
Chromium is a failure, not a skip (CI installs it).

Artifacts (screenshots, server log, timings) go to ``test-artifacts/`` at the repository root.
"""

from __future__ import annotations

import json
import os
import sys
import time

import pytest

if os.environ.get("SFU_SKIP_BROWSER") == "1":
    pytest.skip("real-browser tests disabled by SFU_SKIP_BROWSER=1", allow_module_level=True)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser_helpers as bh  # noqa: E402
from browser_helpers import WAIT_MS, ThreadedHeadlessClient  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def server():
    srv = bh.ServerProcess(log_name="browser-server.log").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def playwright():
    if not os.path.exists(bh.CHROMIUM):
        pytest.fail(
            f"{bh.CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium "
            "(or set SFU_SKIP_BROWSER=1 to skip the browser tests)"
        )
    pw = sync_playwright().start()
    yield pw
    pw.stop()


@pytest.fixture(scope="module")
def browser(playwright):
    """The browser most users share (separate contexts = separate users)."""
    b = bh.launch(playwright)
    yield b
    b.close()


@pytest.fixture(scope="module")
def denying_browser(playwright):
    """Fake devices but no auto-accepted permission prompt: getUserMedia is refused."""
    b = bh.launch(playwright, extra_args=["--use-fake-device-for-media-stream"], fake_media=False)
    yield b
    b.close()


@pytest.fixture(scope="module")
def three_camera_browser(playwright):
    """Three fake cameras (and several fake microphones), for the device picker.

    Chromium's fake_device_1 delivers Y16 (depth) frames that WebRTC cannot encode, so the test
    switches from fake_device_0 (I420) to fake_device_2 (MJPEG).
    """
    b = bh.launch(
        playwright,
        extra_args=["--use-fake-device-for-media-stream=device-count=3", "--use-fake-ui-for-media-stream"],
        fake_media=False,
    )
    yield b
    b.close()


@pytest.fixture
def users(browser, server):
    """``users(name, browser=..., base_url=..., viewport=..., init_script=...)`` -> a new User."""
    yield from bh.user_factory(browser, server)


def report(capsys, text: str) -> None:
    """Print even when pytest captures output, and keep a copy in test-artifacts/."""
    with capsys.disabled():
        print(f"\n[browser] {text}", flush=True)
    bh.ARTIFACTS.mkdir(exist_ok=True)
    with open(bh.ARTIFACTS / "browser-timings.txt", "a") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")


def wait_until(predicate, timeout_s: float, message) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(message() if callable(message) else message)
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# Tests


def test_two_browsers_pair_and_see_each_other(users, capsys):
    a = users("alice")
    b = users("bob")
    t0 = time.monotonic()
    a.open()
    b.open()
    load_s = time.monotonic() - t0

    assert a.state == "idle" and b.state == "idle"
    assert a.page.get_attribute("#remote", "data-visible") == "false", "idle must hide the remote video"

    a.page.click("#start")
    a.wait_state("waiting", "paired")
    clicked_b = time.monotonic()
    b.page.click("#start")
    a.wait_state("paired")
    b.wait_state("paired")
    assert a.partner == b.id and b.partner == a.id, b.debug()
    b.wait_partner_picture()  # the partner's camera, not the grey placeholder
    seen_b = time.monotonic() - clicked_b

    for user in (a, b):
        first, second = user.wait_video_decoding()
        assert second["framesDecoded"] > first["framesDecoded"] > 0
        assert user.js("() => document.querySelector('#remote-video').videoWidth") > 0
        picture = user.wait_partner_picture()
        assert picture["green"] > bh.GREEN_THRESHOLD, picture

    for user in (a, b):
        user.wait_js("() => document.querySelector('#remote').dataset.visible === 'true'")
        user.wait_js("() => window.sfu.metrics.startToFirstFrameMs !== null")
        assert user.chat_lines() == ["You're now chatting with a stranger"]
        assert user.js("() => window.sfu.pcCount") == 1
        assert user.js("() => window.sfu.pc.connectionState") == "connected"
        # Partner audio plays through the (unmuted) video element; the local preview is muted.
        assert user.js("() => document.querySelector('#remote-video').muted") is False
        assert user.js("() => document.querySelector('#local-video').muted") is True
        # Only the local preview is mirrored.
        local_tf = user.js("() => getComputedStyle(document.querySelector('#local-video')).transform")
        remote_tf = user.js("() => getComputedStyle(document.querySelector('#remote-video')).transform")
        assert local_tf.startswith("matrix(-1"), local_tf
        assert remote_tf == "none", remote_tf
        assert user.page.get_attribute("#online", "data-count") == "2"

    ma = a.js("() => window.sfu.metrics")
    mb = b.js("() => window.sfu.metrics")
    report(
        capsys,
        f"start -> first decoded partner frame: second user {mb['startToFirstFrameMs']} ms "
        f"(paired after {mb['pairedAt'] - mb['startClickedAt']:.0f} ms), first user {ma['startToFirstFrameMs']} ms "
        f"incl. waiting for the second; test side (polling every 100 ms): click -> partner picture seen "
        f"{seen_b * 1000:.0f} ms; "
        f"two page loads + negotiation {load_s * 1000:.0f} ms",
    )

    # Stop: back to idle; the partner is told and goes back to looking.
    a.page.click("#stop")
    a.wait_state("idle")
    b.wait_state("waiting", "paired")
    b.wait_js("() => document.querySelector('#chat-log').textContent.includes('Stranger left the chat.')")
    assert b.page.get_attribute("#remote", "data-visible") == "false", "no stale frame after the partner left"
    assert a.page.get_attribute("#remote", "data-visible") == "false"
    assert a.js("() => window.sfu.pcCount") == 1 and b.js("() => window.sfu.pcCount") == 1


def test_next_chat_and_leaving_with_three_users(users):
    a = users("alice").open()
    b = users("bob").open()
    c = users("carol").open()

    a.page.click("#start")
    a.wait_state("waiting", "paired")
    b.page.click("#start")
    a.wait_state("paired")
    b.wait_state("paired")
    assert a.partner == b.id and b.partner == a.id

    c.page.click("#start")
    c.wait_state("waiting")
    time.sleep(1.0)
    assert c.state == "waiting", c.debug()

    # Chat crosses to the partner only.
    a.send_chat("hello bob")
    b.wait_js("() => document.querySelector('#chat-log').textContent.includes('Stranger: hello bob')")
    assert "You: hello bob" in a.chat_lines()
    assert a.page.input_value("#chat-input") == ""

    # HTML in chat is shown literally, never parsed.
    b.send_chat("<b>x</b>")
    a.wait_js("() => document.querySelector('#chat-log').textContent.includes('Stranger: <b>x</b>')")
    for user in (a, b):
        assert "<b>x</b>" in user.chat_text()
        assert user.js("() => document.querySelectorAll('#chat-log b').length") == 0
    time.sleep(0.5)
    assert "hello bob" not in c.chat_text() and "<b>x</b>" not in c.chat_text()

    # Next, with Esc pressed while typing in the chat input.
    a.page.focus("#chat-input")
    a.page.keyboard.press("Escape")
    # The remote video is covered at once: no stale frame from the old partner.
    assert a.page.get_attribute("#remote", "data-visible") == "false"

    everyone = (a, b, c)

    def settled():
        states = {u: (u.state, u.partner, u.id) for u in everyone}
        paired = [u for u in everyone if states[u][0] == "paired"]
        if len(paired) != 2:
            return None
        x, y = paired
        if states[x][1] != states[y][2] or states[y][1] != states[x][2]:
            return None
        (z,) = [u for u in everyone if u not in paired]
        if states[z][0] != "waiting":
            return None
        return x, y, z

    result: list = []
    wait_until(lambda: result.append(settled()) or result[-1] is not None, WAIT_MS / 1000,
               lambda: "no new pair after Next\n" + bh.debug_all(*everyone))
    x, y, z = result[-1]
    assert {x, y} != {a, b}, "Next paired the same two people again"
    assert c in (x, y)
    assert a.partner != b.id

    for user in (x, y):
        user.wait_video_decoding()
        user.wait_partner_picture()
        lines = user.chat_lines()
        assert lines[0] == "You're now chatting with a stranger", lines
        assert not any("hello bob" in line for line in lines), "chat log must be cleared for a new partner"
    for user in everyone:
        assert user.js("() => window.sfu.pcCount") == 1, "Next must not create a new peer connection"

    # Closing one page frees its partner, who finds the one left waiting.
    leaver = x if x is not c else y
    assert leaver is not c
    leaver.close()
    c.wait_state("waiting", "paired")
    c.wait_js("(id) => window.sfu.state === 'paired' && window.sfu.partner === id", z.id)
    z.wait_js("(id) => window.sfu.state === 'paired' && window.sfu.partner === id", c.id)
    c.wait_video_decoding()
    z.wait_video_decoding()
    z.wait_partner_picture()


@pytest.mark.parametrize("how", ["browser-permission-denied", "getUserMedia-rejects"])
def test_camera_denied_waits_for_a_camera_to_be_matched(users, browser, denying_browser, how):
    if how == "browser-permission-denied":
        viewer = users("viewer", browser=denying_browser)
    else:
        viewer = users("viewer", init_script="""
            Object.defineProperty(navigator.mediaDevices, 'getUserMedia', {
              configurable: true,
              value: () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError')),
            });
        """)
    viewer.open()
    viewer.page.wait_for_selector("#notice[data-kind='camera-denied']", state="visible", timeout=WAIT_MS)
    text = viewer.page.inner_text("#notice")
    assert "blocked" in text, text
    assert viewer.page.get_attribute("#local", "data-camera") == "none"
    assert viewer.page.is_disabled("#mute-mic") and viewer.page.is_disabled("#camera-off")

    # The buttons still work, but the server matches only people whose video reaches it
    # (--require-camera, the default): the page says why it keeps waiting.
    viewer.page.click("#start")
    viewer.wait_state("waiting")
    viewer.page.wait_for_selector("#notice[data-kind='camera-required']", state="visible", timeout=WAIT_MS)
    assert "camera" in viewer.page.inner_text("#notice").lower()
    assert viewer.page.get_by_role("button", name="Turn camera on").is_visible()

    partner = users("partner", browser=browser).open()
    partner.page.click("#start")
    partner.wait_state("waiting")
    time.sleep(2.0)
    assert viewer.state == "waiting" and partner.state == "waiting"
    assert viewer.partner is None and partner.partner is None

    # Stop: no longer waiting for anything, the notice goes.
    viewer.page.click("#stop")
    viewer.wait_state("idle")
    viewer.page.wait_for_selector("#notice[data-kind='camera-required']", state="detached", timeout=WAIT_MS)


def test_screenshots_desktop_and_phone(users):
    desktop = users("desktop", viewport=bh.VIEWPORT_DESKTOP).open()
    phone = users("phone", viewport=bh.VIEWPORT_PHONE).open()

    # Nothing may stick out sideways on a phone, at 390 px and at 375 px.
    for width, height in ((390, 844), (375, 667)):
        phone.page.set_viewport_size({"width": width, "height": height})
        overflow = phone.js("() => document.documentElement.scrollWidth")
        assert overflow <= width, f"horizontal overflow at {width}px: scrollWidth={overflow}"
    phone.page.set_viewport_size(bh.VIEWPORT_PHONE)

    desktop.page.click("#start")
    desktop.wait_state("waiting", "paired")
    phone.page.click("#start")
    for user in (desktop, phone):
        user.wait_state("paired")
        user.wait_partner_picture()
        user.wait_js("() => document.querySelector('#remote').dataset.visible === 'true'")

    desktop.send_chat("Hey! Where are you from?")
    phone.wait_js("() => document.querySelector('#chat-log').textContent.includes('Where are you from?')")
    phone.send_chat("Hi :) Lisbon, you?")
    desktop.wait_js("() => document.querySelector('#chat-log').textContent.includes('Lisbon')")

    # Phone layout: videos stacked, main buttons within the screen.
    boxes = phone.js("""() => Object.fromEntries(['#remote', '#local', '#start', '#next', '#stop', '#chat-input']
        .map((s) => { const r = document.querySelector(s).getBoundingClientRect();
                      return [s, {left: r.left, right: r.right, top: r.top, bottom: r.bottom}]; }))""")
    assert boxes["#local"]["top"] >= boxes["#remote"]["bottom"] - 1, boxes
    for sel in ("#start", "#next", "#stop"):
        assert boxes[sel]["left"] >= 0 and boxes[sel]["right"] <= bh.VIEWPORT_PHONE["width"], (sel, boxes)
        assert boxes[sel]["bottom"] <= bh.VIEWPORT_PHONE["height"], f"{sel} is below the fold: {boxes[sel]}"
    assert boxes["#chat-input"]["bottom"] <= bh.VIEWPORT_PHONE["height"], boxes
    assert phone.js("() => document.documentElement.scrollHeight") <= bh.VIEWPORT_PHONE["height"], \
        "the whole app should fit a 390x844 phone screen"

    bh.ARTIFACTS.mkdir(exist_ok=True)
    for user in (desktop, phone):
        user.page.locator("#chat-input").blur()
        user.page.mouse.move(0, 0)
    time.sleep(0.6)  # overlay fade-out
    desktop.page.screenshot(path=str(bh.ARTIFACTS / "paired-desktop.png"))
    phone.page.screenshot(path=str(bh.ARTIFACTS / "paired-phone.png"))
    phone.page.screenshot(path=str(bh.ARTIFACTS / "paired-phone-full.png"), full_page=True)
    for name in ("paired-desktop.png", "paired-phone.png"):
        assert (bh.ARTIFACTS / name).stat().st_size > 10_000


def test_device_switch_and_toggles_without_renegotiation(users, three_camera_browser):
    me = users("three-cameras", browser=three_camera_browser).open()
    other = users("other").open()
    me.page.click("#start")
    me.wait_state("waiting", "paired")
    other.page.click("#start")
    me.wait_state("paired")
    other.wait_state("paired")
    other.wait_partner_picture()

    options = me.js("() => [...document.querySelectorAll('#camera-select option')].map((o) => [o.value, o.textContent])")
    assert len(options) >= 2, options
    sender_track = "(kind) => { const t = window.sfu.pc.getTransceivers().find((x) => x.receiver.track.kind === kind).sender.track; return t && {id: t.id, label: t.label, enabled: t.enabled}; }"
    before = me.js(sender_track, "video")
    me.page.click("#devices > summary")  # open the device picker
    me.page.wait_for_selector("#camera-select", state="visible")
    current = me.page.input_value("#camera-select")
    target_value, target_label = next(o for o in options if o[0] != current and o[1] != "fake_device_1")
    me.page.select_option("#camera-select", target_value)
    me.wait_js(f"(label) => ({sender_track})('video').label === label", target_label)
    after = me.js(sender_track, "video")
    assert after["id"] != before["id"]
    assert me.js("() => window.sfu.localStream.getVideoTracks()[0].label") == target_label
    assert me.js("() => window.sfu.pcCount") == 1
    other.wait_video_decoding()
    other.wait_partner_picture()

    mics = me.js("() => [...document.querySelectorAll('#mic-select option')].map((o) => o.value)")
    if len(mics) >= 2:
        current_mic = me.page.input_value("#mic-select")
        before_mic = me.js(sender_track, "audio")
        me.page.select_option("#mic-select", next(m for m in mics if m != current_mic))
        me.wait_js(f"(id) => ({sender_track})('audio').id !== id", before_mic["id"])

    # Esc closes the picker first (and does not skip the partner).
    me.page.keyboard.press("Escape")
    me.page.wait_for_selector("#camera-select", state="hidden")
    assert me.state == "paired"

    # Mute: the sent audio track is disabled (and back).
    me.page.click("#mute-mic")
    assert me.page.get_attribute("#mute-mic", "aria-pressed") == "true"
    assert me.js(sender_track, "audio")["enabled"] is False
    me.page.click("#mute-mic")
    assert me.js(sender_track, "audio")["enabled"] is True

    # Camera off: the partner's picture turns black, then comes back.
    me.page.click("#camera-off")
    assert me.page.get_attribute("#camera-off", "aria-pressed") == "true"
    assert me.page.get_attribute("#local", "data-camera") == "off"
    assert me.js(sender_track, "video")["enabled"] is False
    other.wait_js(f"() => {{ const p = ({bh.JS_REMOTE_PICTURE})(); return !!p && p.green < 5 && p.mean < 20; }}")
    me.page.click("#camera-off")
    assert me.page.get_attribute("#local", "data-camera") == "on"
    other.wait_partner_picture()
    assert me.js("() => window.sfu.pcCount") == 1 and other.js("() => window.sfu.pcCount") == 1


def test_reconnects_with_a_new_peer_connection_after_the_server_dies(users):
    srv = bh.ServerProcess(log_name="browser-server-restart.log").start()
    try:
        user = users("survivor", base_url=srv.url).open()
        user.page.click("#start")
        user.wait_state("waiting")
        assert user.js("() => window.sfu.pcCount") == 1

        srv.kill()  # abrupt: no goodbye message
        user.page.wait_for_selector("#notice[data-kind='disconnected']", state="visible", timeout=WAIT_MS)
        assert "Connection to the server was lost" in user.page.inner_text("#notice")
        assert user.state == "waiting", "the user still wants to be matched"
        assert user.page.get_attribute("#remote", "data-visible") == "false"
        assert user.page.inner_text("#online") == "Offline"

        srv = bh.ServerProcess(port=srv.port, log_name="browser-server-restart.log").start()
        user.wait_js("() => window.sfu.negotiated && window.sfu.pcCount === 2")
        user.wait_js("() => document.querySelector('#notice').dataset.kind !== 'disconnected'")
        user.wait_state("waiting")
        user.wait_js("() => document.querySelector('#overlay-title').textContent === 'Looking for someone…'")

        other = users("newcomer", base_url=srv.url).open()
        other.page.click("#start")
        user.wait_state("paired")
        other.wait_state("paired")
        user.wait_video_decoding()
        user.wait_partner_picture()
        assert user.js("() => window.sfu.pcCount") == 2
    finally:
        srv.stop()


def test_friendly_notices_for_server_full_and_unreachable(users):
    def refuse_full(ws):
        ws.send(json.dumps({"type": "error", "code": "server_full", "message": "too many participants"}))
        ws.close(code=1013, reason="server full")

    full = users("full")
    full.page.route_web_socket("**/ws", refuse_full)
    full.open(wait_negotiated=False)
    full.page.wait_for_selector("#notice[data-kind='server-error'][data-code='server_full']", state="visible",
                                timeout=WAIT_MS)
    text = full.page.inner_text("#notice")
    assert "The server is full right now." in text, text  # the countdown below says when
    assert "Retrying in" in text, text
    assert full.state == "idle"
    full.page.click("#start")  # still clickable: queued until the server takes us
    full.wait_state("waiting")
    full.page.click("#stop")
    full.wait_state("idle")

    gone = users("gone")
    gone.page.route_web_socket("**/ws", lambda ws: ws.close())
    gone.open(wait_negotiated=False)
    gone.page.wait_for_selector("#notice[data-kind='unreachable']", state="visible", timeout=WAIT_MS)
    assert "Can't reach the server" in gone.page.inner_text("#notice")


def test_busy_server_says_when_to_try_again_and_the_page_does(users):
    """``server_full`` with ``retry_after`` (an overloaded worker): the page reconnects after about
    that long (not the 30 s it waits when the server says nothing) and carries on."""
    attempts: list[int] = []

    def busy_once(ws):
        attempts.append(1)
        if len(attempts) == 1:
            ws.send(json.dumps({"type": "error", "code": "server_full", "message": "busy", "retry_after": 1}))
            ws.close(code=1013, reason="server full")
        else:
            ws.connect_to_server()

    user = users("patient")
    user.page.route_web_socket("**/ws", busy_once)
    user.open(wait_negotiated=False)
    user.page.wait_for_selector("#notice[data-code='server_full']", state="visible", timeout=WAIT_MS)
    user.wait_js("() => window.sfu.negotiated === true", timeout=20_000)  # well under 30 s
    assert len(attempts) == 2
    user.accept_rules()
    user.page.click("#start")
    user.wait_state("waiting")


def test_browser_and_headless_python_client_work_both_ways(users, server):
    """A browser paired with the protocol's headless client: video and chat in both directions."""
    bot = ThreadedHeadlessClient(server.url, 4242, width=480, height=360, fps=15)
    try:
        bot.run(bot.client.connect())
        bot.run(bot.client.start())
        bot.run(bot.client.expect("waiting"))
        user = users("carol").open()
        user.page.click("#start")
        user.wait_state("paired")
        assert user.partner == bot.client.id
        assert bot.run(bot.client.expect("paired"))["partner"] == user.id

        # browser -> headless: the fake camera's picture (640x480), not the grey placeholder (320x240)
        def camera_frames() -> int:
            return sum(1 for f in bot.client.received.frames if (f.width, f.height) == (640, 480))

        wait_until(lambda: camera_frames() >= 10, 20, lambda: f"headless client got {camera_frames()} camera frames")
        assert all(f.stamp is None for f in bot.client.received.frames), "the browser sends no stamp"

        # headless -> browser: the stamped 480x360 video decodes in the page
        user.wait_js("() => document.querySelector('#remote-video').videoWidth === 480")
        first, second = user.wait_video_decoding()
        assert second["framesDecoded"] > first["framesDecoded"]
        assert bot.client.received.audio_frames > 0

        # chat both ways, shown as text
        user.send_chat("hello from the browser")
        assert bot.run(bot.client.expect("chat"))["text"] == "hello from the browser"
        bot.run(bot.client.chat("<i>hi</i> from python"))
        user.wait_js("() => document.querySelector('#chat-log').textContent.includes('<i>hi</i> from python')")
        assert user.js("() => document.querySelectorAll('#chat-log i').length") == 0
    finally:
        bot.close()
