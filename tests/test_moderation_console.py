"""The moderator console in real headless Chromium: sign in, see a seeded report with its picture,
ban, unban, read the audit log; usable on a 375 px phone. Screenshots go to test-artifacts/."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from sfu.moderation.api import setup_moderation_routes
from sfu.moderation.identity import ModerationIdentity
from sfu.moderation.service import ModerationService

from .browser_helpers import ARTIFACTS, WAIT_MS, chromium, free_port
from .moderation_helpers import ADMIN_TOKEN, picture, settings_for

if os.environ.get("SFU_SKIP_BROWSER") == "1":
    pytest.skip("real-browser tests disabled by SFU_SKIP_BROWSER=1", allow_module_level=True)

from playwright.sync_api import Page

PINK = (230, 40, 200)
TEAL = (20, 170, 160)
HOSTILE_NOTE = '<img src=x onerror="window.pwned=1"> was rude'
REPORTED = ModerationIdentity("reported-device-0001", "reported-net")

# Mean colour of the centre of an evidence picture, drawn on a canvas (same origin, so readable).
JS_PICTURE_COLOUR = """(id) => {
  const img = document.querySelector(`img[data-evidence-id="${id}"]`);
  if (!img || !img.complete || !img.naturalWidth) return null;
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d');
  g.drawImage(img, 0, 0);
  const d = g.getImageData(Math.floor(c.width / 2), Math.floor(c.height / 2), 1, 1).data;
  return {width: img.naturalWidth, height: img.naturalHeight, rgb: [d[0], d[1], d[2]]};
}"""


class ConsoleServer:
    """The moderation service and its routes on a loopback port, in a thread with its own loop."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.service: ModerationService | None = None
        self.runner: web.AppRunner | None = None

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def start(self) -> ConsoleServer:
        self.thread.start()
        self.call(self._start())
        return self

    async def _start(self) -> None:
        settings = settings_for(self.data_dir)
        self.service = await ModerationService.open(settings)
        app = web.Application()
        setup_moderation_routes(app, self.service, settings)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        async def _stop() -> None:
            if self.runner:
                await self.runner.cleanup()
            if self.service:
                await self.service.close()

        self.call(_stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    server = ConsoleServer(tmp_path_factory.mktemp("moderation")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    yield from chromium(fake_media=False)


def seed(console: ConsoleServer) -> tuple[int, int]:
    service = console.service
    assert service is not None

    async def _seed() -> tuple[int, int]:
        now = service.clock()
        automatic = await service.automatic_detection(
            ModerationIdentity("other-device-0002", None), {"FEMALE_BREAST_EXPOSED": 0.87},
            [picture(TEAL, now - 3, 160, 120), picture(TEAL, now - 2, 160, 120)])
        manual = await service.report(ModerationIdentity("reporter-device-01", None), REPORTED, "harassment",
                                      HOSTILE_NOTE, [picture(PINK, now - 1, 160, 120)])
        return manual.report_id, automatic.report_id

    return console.call(_seed())


def sign_in(page: Page, url: str, name: str) -> None:
    page.goto(url + "/mod/")
    page.wait_for_selector("#signin-form", state="visible")
    page.fill("#token", "wrong-token-wrong-token")
    page.click("#signin-submit")
    page.wait_for_function("() => document.querySelector('#signin-error').textContent === 'Wrong token.'")
    page.fill("#token", ADMIN_TOKEN)
    page.fill("#name", name)
    page.click("#signin-submit")
    page.wait_for_selector("#console", state="visible")


def test_console_sign_in_review_ban_unban(console, browser):
    report_id, automatic_id = seed(console)
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        sign_in(page, console.url, "Tester")
        assert page.text_content("#who") == "console:Tester"

        card = page.locator(f'[data-report-id="{report_id}"]')
        card.wait_for()
        assert page.locator(f'[data-report-id="{automatic_id}"]').count() == 1
        [evidence] = console.call(console.service.report_detail(report_id)).evidence
        shown = page.wait_for_function(
            f"() => {{ const p = ({JS_PICTURE_COLOUR})({evidence.id}); return p && p; }}").json_value()
        assert (shown["width"], shown["height"]) == (160, 120)
        assert all(abs(a - b) <= 16 for a, b in zip(shown["rgb"], PINK)), shown
        # The note is shown as text: the markup in it is not a picture and runs nothing.
        assert card.locator("blockquote.note").text_content() == HOSTILE_NOTE
        assert card.locator("img").count() == 1 and page.evaluate("() => window.pwned") is None
        page.screenshot(path=str(ARTIFACTS / "moderation-console-queue.png"), full_page=True)

        card.locator('[data-field="duration"]').select_option("3600")
        card.locator('[data-field="scope"]').select_option("device+address")
        card.locator('[data-field="reason"]').fill("harassment")
        card.locator('[data-action="ban"]').click()
        page.wait_for_function("() => document.querySelector('#toast').textContent.includes('banned until')")
        ban = console.call(console.service.is_banned(ModerationIdentity("another-device", "reported-net")))
        assert ban is not None and ban.created_by == "console:Tester" and ban.until - ban.created_at == 3600
        page.wait_for_function(f"() => !document.querySelector('[data-report-id=\"{report_id}\"]')")

        page.click("#tab-bans")
        ban_card = page.locator(f'[data-ban-id="{ban.id}"]')
        ban_card.wait_for()
        assert "harassment" in ban_card.text_content()
        page.screenshot(path=str(ARTIFACTS / "moderation-console-bans.png"), full_page=True)
        ban_card.locator('[data-action="unban"]').click()
        page.wait_for_selector("#bans-empty", state="visible")
        assert console.call(console.service.is_banned(REPORTED)) is None

        page.click("#tab-audit")
        page.wait_for_selector('#audit [data-action="unban"]')
        entries = page.locator("#audit .audit__what").all_text_contents()
        assert entries[0].startswith("console:Tester — unban ban")
        assert entries[1].startswith("console:Tester — ban report")
        page.screenshot(path=str(ARTIFACTS / "moderation-console-audit.png"), full_page=True)

        page.reload()  # the session cookie survives a reload
        page.wait_for_selector("#console", state="visible")
        page.click("#sign-out")
        page.wait_for_selector("#signin-form", state="visible")
        assert errors == []
    finally:
        context.close()


def test_console_on_a_phone(console, browser):
    seed(console)
    context = browser.new_context(viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True,
                                  device_scale_factor=2)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        sign_in(page, console.url, "Phone")
        page.wait_for_selector("[data-report-id] img")
        page.wait_for_function("() => [...document.querySelectorAll('img[data-evidence-id]')]"
                               ".every((i) => i.complete && i.naturalWidth > 0)")
        overflow = page.evaluate("() => document.documentElement.scrollWidth")
        assert overflow <= 375, f"page is {overflow} px wide on a 375 px phone"
        for selector in ('[data-action="ban"]', '[data-action="warn"]', '[data-action="dismiss"]', "#tab-bans"):
            box = page.locator(selector).first.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375 and box["height"] >= 36
        page.screenshot(path=str(ARTIFACTS / "moderation-console-phone.png"), full_page=False)
    finally:
        context.close()
