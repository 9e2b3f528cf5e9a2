"""Safety in the page, in real headless Chromium against ``sfu serve``: the rules dialog before the
first Start, the report button (and the R key) on a 375 px phone, the report stored with the
server's pictures, and a ban shown clearly with no reconnect loop. Screenshots go to test-artifacts/."""

from __future__ import annotations

import json
import os
import time
import urllib.request

import pytest
from playwright.sync_api import expect

from . import browser_helpers as bh
from .browser_helpers import WAIT_MS, User

if os.environ.get("SFU_SKIP_BROWSER") == "1":
    pytest.skip("real-browser tests disabled by SFU_SKIP_BROWSER=1", allow_module_level=True)


TOKEN = "browser-moderator-token-0123456789"
RULES = "House rules\n\n<b>No</b> nudity & no harassment.\nBe 18 or older.\n"
PHONE = {"width": 375, "height": 812}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("browser-moderation")
    (base / "rules.txt").write_text(RULES)
    srv = bh.ServerProcess(log_name="browser-moderation-server.log", extra_args=(
        "--data-dir", str(base / "data"), "--rules-file", str(base / "rules.txt"), "--admin-token", TOKEN,
    )).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    yield from bh.chromium()


def api(server, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {TOKEN}"},
                                     data=json.dumps(body).encode() if body is not None else None,
                                     method="POST" if body is not None else "GET")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def connected(server) -> int:
    return bh.http_json(server.url + "/healthz")["participants"]["connected"]


def wait_until(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout_s} s")
        time.sleep(0.2)


def inside(box: dict, viewport: dict) -> bool:
    return box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= viewport["width"] \
        and box["y"] + box["height"] <= viewport["height"]


def test_rules_report_and_ban_in_the_page(browser, server):
    alice = User(browser, server.url, "alice (phone)", viewport=PHONE)
    bob = User(browser, server.url, "bob")
    try:
        # The rules come first, shown literally (operator text is never HTML), and Start waits for them.
        alice.open(accept_rules=False)
        alice.page.wait_for_selector("#rules-dialog[open]", state="visible")
        assert alice.page.inner_text("#rules-text").strip() == RULES.strip()
        assert alice.js("() => document.querySelectorAll('#rules-text b').length") == 0
        assert alice.js("() => window.sfu.rulesAccepted") is False
        dialog = alice.page.locator("#rules-dialog").bounding_box()
        assert dialog and inside(dialog, PHONE), dialog
        alice.page.screenshot(path=str(bh.ARTIFACTS / "moderation-rules-phone.png"))
        alice.page.click("#rules-accept")
        alice.wait_js("() => window.sfu.rulesAccepted === true")
        assert not alice.page.locator("#rules-dialog").is_visible()
        alice.page.click("#start")
        alice.wait_state("waiting")

        bob.open()  # accepts the rules in the dialog
        bob.page.click("#start")
        alice.wait_state("paired")
        bob.wait_state("paired")
        bob_id = bob.id
        alice.wait_partner_picture()

        # The report button sits on the partner's video, on screen on a 375 px phone.
        alice.page.wait_for_selector("#report", state="visible")
        button = alice.page.locator("#report").bounding_box()
        assert button and inside(button, PHONE) and button["height"] >= 32, button
        alice.page.click("#report")
        alice.page.wait_for_selector("#report-dialog[open]", state="visible")
        send = alice.page.locator("#report-send").bounding_box()
        assert send and inside(send, PHONE), send
        alice.page.check("input[name=reason][value=harassment]")
        alice.page.fill("#report-note", "kept insulting me")
        alice.page.screenshot(path=str(bh.ARTIFACTS / "moderation-report-phone.png"))
        alice.page.click("#report-send")

        # Confirmed, and alice moves on (bob is told his partner left).
        alice.page.wait_for_selector("#notice[data-kind='report'][data-tone='ok']", state="visible")
        assert "Reported, thank you" in alice.page.inner_text("#notice")
        alice.wait_js("(id) => window.sfu.partner !== id", bob_id)
        report = wait_until(lambda: next(iter(api(server, "/api/mod/reports?status=open")["reports"]), None),
                            10, "report in the moderator API")
        assert report["reason"] == "harassment" and report["note"] == "kept insulting me"
        detail = wait_until(lambda: (d := api(server, f"/api/mod/reports/{report['id']}"))["evidence"] and d,
                            15, "evidence pictures")
        assert detail["evidence"][0]["width"] > 0

        # R opens the report dialog, but not while typing in the chat.
        bob.wait_state("waiting", "paired")
        alice.wait_state("paired", timeout=WAIT_MS)  # the two of them meet again after the rematch cooldown
        alice.page.focus("#chat-input")
        alice.page.keyboard.press("r")
        assert not alice.page.locator("#report-dialog").is_visible()
        alice.page.click("#status")
        alice.page.keyboard.press("r")
        alice.page.wait_for_selector("#report-dialog[open]", state="visible")
        alice.page.click("#report-cancel")
        assert not alice.page.locator("#report-dialog").is_visible()

        # Banned: bob is told clearly until when and why, his controls are off, and he stays away.
        result = api(server, f"/api/mod/reports/{report['id']}/actions",
                     {"action": "ban", "duration_s": 3600, "scope": "device", "reason": "insults"})
        until = result["ban"]["until"]
        bob.page.wait_for_selector("#notice[data-kind='banned']", state="visible")
        text = bob.page.inner_text("#notice")
        assert "You are banned" in text and "Reason: insults" in text, text
        assert bob.js("() => window.sfu.banned") == {"until": until, "reason": "insults"}
        assert bob.page.is_disabled("#start") and bob.page.is_hidden("#report")
        # The overlay fades in (its first frame is still invisible): wait for what is shown.
        expect(bob.page.locator("#overlay-title")).to_have_text("You are banned")
        expect(bob.page.locator("#status .status__text")).to_have_text("You are banned")
        bob.page.screenshot(path=str(bh.ARTIFACTS / "moderation-banned.png"))
        wait_until(lambda: connected(server) == 1, 10, "bob's socket closing")
        time.sleep(3)  # longer than the first reconnect delay
        assert connected(server) == 1, "a banned page must not reconnect"
        assert bob.js("() => window.sfu.ws") is None
    finally:
        alice.close()
        bob.close()
