"""Helpers for the real-browser tests: the Chromium launch, a server process, one page per user.

Uses Playwright's *sync* API with the system Chromium (``/usr/bin/chromium``); never
``playwright install``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator, Optional

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"

#: Flags for every browser (see /work/shared/notes/test-environment.md).
BASE_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--allow-loopback-in-peer-connection",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Fake camera/microphone and auto-accepted permission prompts.
FAKE_MEDIA_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
CHROMIUM_ARGS = BASE_ARGS + FAKE_MEDIA_ARGS

#: Generous: the CI machine has 2 cores shared by the server (which transcodes) and several browsers.
WAIT_MS = 20_000

VIEWPORT_DESKTOP = {"width": 1280, "height": 800}
VIEWPORT_PHONE = {"width": 390, "height": 844}


def launch(playwright, extra_args: Optional[list[str]] = None, fake_media: bool = True):
    args = (CHROMIUM_ARGS if fake_media else BASE_ARGS) + list(extra_args or [])
    return playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)


def chromium(fake_media: bool = True) -> Iterator[Any]:
    """Debian's Chromium through Playwright, for a module's ``browser`` fixture
    (``yield from chromium()``); closed afterwards. Fails clearly when it is not installed."""
    import pytest
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium "
            "(or set SFU_SKIP_BROWSER=1 to skip the browser tests)"
        )
    with sync_playwright() as pw:
        browser = launch(pw, fake_media=fake_media)
        yield browser
        browser.close()


# ---------------------------------------------------------------------------------------------
# Server process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read().decode())


class ServerProcess:
    """``python -m sfu serve`` on a loopback port, output logged under test-artifacts/."""

    def __init__(self, port: Optional[int] = None, log_name: str = "browser-server.log",
                 extra_args: tuple[str, ...] = (), moderation: Optional[dict] = None):
        self.port = port or free_port()
        #: Moderation settings (ModerationSettings fields), or None for the server's defaults.
        self.moderation = moderation
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra = list(extra_args)
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / log_name
        self.proc: Optional[subprocess.Popen] = None
        self._log = None

    def start(self, timeout: float = 30.0) -> "ServerProcess":
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.setdefault("PYTHONUNBUFFERED", "1")
        self._log = open(self.log_path, "a", buffering=1)
        self._log.write(f"\n===== starting server on port {self.port} =====\n")
        launcher = ["-m", "sfu"] if self.moderation is None else [
            str(ROOT / "tests" / "moderated_serve.py"), json.dumps(self.moderation)]
        self.proc = subprocess.Popen(
            [sys.executable, *launcher, "serve", "--host", "127.0.0.1", "--port", str(self.port), *self.extra],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sfu serve exited with {self.proc.returncode}; see {self.log_path}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"sfu serve did not answer /healthz in {timeout} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_empty(self, timeout: float = 15.0) -> None:
        """Wait until nobody is connected (previous tests' pages are really gone)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                status = http_json(self.url + "/healthz")
            except OSError:
                status = None
            participants = (status or {}).get("participants")
            if isinstance(participants, dict) and "connected" in participants:
                if participants["connected"] == 0:
                    return
            else:  # unknown /healthz format: give closing sockets a moment
                time.sleep(1.0)
                return
            time.sleep(0.1)
        raise AssertionError(f"server still has participants after {timeout} s: {status}")


# ---------------------------------------------------------------------------------------------
# One user = one browser context with one page

JS_INBOUND_VIDEO = """async () => {
  const pc = window.sfu && window.sfu.pc;
  if (!pc) return null;
  const stats = await pc.getStats();
  let out = null;
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && (s.kind === 'video' || s.mediaType === 'video')) {
      out = {framesDecoded: s.framesDecoded || 0, frameWidth: s.frameWidth || 0,
             frameHeight: s.frameHeight || 0, bytesReceived: s.bytesReceived || 0};
    }
  });
  return out;
}"""

# Mean luminance, its spread and "greenness" of the partner's picture (64x48 sample). Chromium's
# fake camera is a green picture with a moving pie; the server's placeholder is uniform grey.
JS_REMOTE_PICTURE = """() => {
  const v = document.querySelector('#remote-video');
  if (!v || !v.videoWidth) return null;
  const c = document.createElement('canvas');
  c.width = 64; c.height = 48;
  const g = c.getContext('2d', {willReadFrequently: true});
  g.drawImage(v, 0, 0, 64, 48);
  const d = g.getImageData(0, 0, 64, 48).data;
  let n = 0, sum = 0, sq = 0, green = 0;
  for (let i = 0; i < d.length; i += 4) {
    const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
    sum += y; sq += y * y; green += d[i + 1] - (d[i] + d[i + 2]) / 2; n++;
  }
  const mean = sum / n;
  return {width: v.videoWidth, height: v.videoHeight, mean,
          std: Math.sqrt(Math.max(0, sq / n - mean * mean)), green: green / n};
}"""

#: A fake-camera picture from the partner (not the grey "waiting" picture).
GREEN_THRESHOLD = 25


class User:
    def __init__(self, browser, base_url: str, name: str, viewport: Optional[dict] = None,
                 init_script: Optional[str] = None, **context_options: Any):
        self.name = name
        self.base_url = base_url
        self.context = browser.new_context(viewport=viewport or VIEWPORT_DESKTOP, **context_options)
        if init_script:
            self.context.add_init_script(init_script)
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.logs: list[str] = []
        self.page.on("console", lambda m: self.logs.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.logs.append(f"PAGE ERROR: {e}"))
        self.closed = False

    # --- navigation ---------------------------------------------------------------------------

    def open(self, wait_negotiated: bool = True, accept_rules: bool = True) -> "User":
        """Load the page; once connected, accept the service's rules in their dialog (as a visitor
        who agrees does) unless ``accept_rules`` is off."""
        self.page.goto(self.base_url + "/")
        self.page.wait_for_function("() => !!window.sfu", timeout=WAIT_MS)
        if wait_negotiated:
            self.wait_js("() => window.sfu.negotiated === true")
            if accept_rules:
                self.accept_rules()
        return self

    def accept_rules(self) -> None:
        self.page.wait_for_selector("#rules-dialog[open]", state="visible", timeout=WAIT_MS)
        self.page.click("#rules-accept")
        self.wait_js("() => window.sfu.rulesAccepted === true")

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.context.close()

    # --- reading state ------------------------------------------------------------------------

    def js(self, expression: str, arg: Any = None) -> Any:
        return self.page.evaluate(expression, arg)

    def wait_js(self, expression: str, arg: Any = None, timeout: int = WAIT_MS) -> Any:
        try:
            return self.page.wait_for_function(expression, arg=arg, timeout=timeout, polling=100).json_value()
        except Exception as exc:  # add the page's console to the failure
            raise AssertionError(f"{self.name}: timed out waiting for {expression!r} ({exc}).\n{self.debug()}") from None

    @property
    def state(self) -> str:
        return self.page.get_attribute("#status", "data-state")

    @property
    def id(self) -> Optional[str]:
        return self.js("() => window.sfu.id")

    @property
    def partner(self) -> Optional[str]:
        return self.js("() => window.sfu.partner")

    def wait_state(self, *states: str, timeout: int = WAIT_MS) -> str:
        self.wait_js(
            "(states) => states.includes(document.querySelector('#status').dataset.state)",
            list(states),
            timeout=timeout,
        )
        return self.state

    def chat_lines(self) -> list[str]:
        return self.js("() => [...document.querySelectorAll('#chat-log .msg')].map((e) => e.textContent)")

    def chat_text(self) -> str:
        return self.js("() => document.querySelector('#chat-log').textContent")

    def send_chat(self, text: str) -> None:
        self.page.fill("#chat-input", text)
        self.page.press("#chat-input", "Enter")

    def inbound_video(self) -> Optional[dict]:
        return self.js(JS_INBOUND_VIDEO)

    def remote_picture(self) -> Optional[dict]:
        return self.js(JS_REMOTE_PICTURE)

    def wait_video_decoding(self, timeout_s: float = WAIT_MS / 1000) -> tuple[dict, dict]:
        """videoWidth > 0 and framesDecoded rising between two getStats() calls."""
        self.wait_js("() => document.querySelector('#remote-video').videoWidth > 0")
        deadline = time.monotonic() + timeout_s
        first = self.inbound_video()
        while True:
            time.sleep(0.5)
            second = self.inbound_video()
            if first and second and second["framesDecoded"] > first["framesDecoded"] > 0:
                return first, second
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: frames are not being decoded: {first} -> {second}\n{self.debug()}")
            first = second

    def wait_partner_picture(self, timeout: int = WAIT_MS) -> dict:
        """The decoded picture is the partner's fake camera (green), not the grey placeholder."""
        self.wait_js(f"() => {{ const p = ({JS_REMOTE_PICTURE})(); return !!p && p.green > {GREEN_THRESHOLD}; }}",
                     timeout=timeout)
        return self.remote_picture()

    def debug(self) -> str:
        try:
            info = self.js("() => ({state: window.sfu.state, id: window.sfu.id, partner: window.sfu.partner,"
                           " negotiated: window.sfu.negotiated, pcCount: window.sfu.pcCount,"
                           " pc: window.sfu.pc && window.sfu.pc.connectionState,"
                           " notice: document.querySelector('#notice').dataset.kind})")
        except Exception as exc:  # page may be gone
            info = f"(no page state: {exc})"
        logs = "\n    ".join(self.logs[-25:])
        return f"--- {self.name}: {info}\n    {logs}"


def debug_all(*users: User) -> str:
    return "\n".join(u.debug() for u in users if not u.closed)


class ThreadedHeadlessClient:
    """The headless Python client on its own event loop thread, beside the synchronous browser."""

    def __init__(self, url: str, sender_id: int, **kwargs) -> None:
        import asyncio
        import threading

        from sfu.headless.client import HeadlessClient

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

        async def make() -> HeadlessClient:
            return HeadlessClient(url, sender_id, **kwargs)

        self.client = self.run(make())

    def run(self, coro, timeout: float = 40.0):
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def close(self) -> None:
        try:
            self.run(self.client.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()


def user_factory(browser, server: "ServerProcess"):
    """For a ``users`` fixture: yields ``make(name, *, browser=..., base_url=..., **User options)``
    -> a new :class:`User` on ``server`` (once nobody is left on it), and closes them all after."""
    server.wait_empty()
    made: list[User] = []

    def make(name: str, *, browser=browser, base_url: str = server.url, **kwargs) -> User:
        user = User(browser, base_url, name, **kwargs)
        made.append(user)
        return user

    yield make
    for user in made:
        try:
            user.close()
        except Exception:  # a page that already went away  # noqa: BLE001
            pass
