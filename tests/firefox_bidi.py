"""Firefox ESR driven over WebDriver BiDi, its built-in remote protocol, with no driver in between.

Playwright's Firefox support needs its own patched Firefox; its WebDriver BiDi mode (``channel=
"moz-firefox"``) sends ``emulation.setMediaFeaturesOverride`` when it opens a context, which Debian's
firefox-esr rejects ("unknown command"). What the tests need is small: open pages, run JavaScript
and read its result. :class:`Firefox` starts ``firefox-esr --headless --remote-debugging-port=0``
with a throwaway profile and speaks BiDi over aiohttp's WebSocket client.

Firefox offers no loopback ICE candidates unless ``media.peerconnection.ice.loopback`` is set, which
:data:`PREFS` does, with a fake camera and microphone and no permission prompt.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import signal
import tempfile
import time
from typing import Any, Optional

import aiohttp

FIREFOX = "/usr/bin/firefox-esr"

PREFS: dict[str, Any] = {
    # a fake camera and microphone, no permission prompt
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    # host candidates on loopback, with their real addresses (no mDNS names)
    "media.peerconnection.ice.loopback": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    # nothing leaves the machine: no updates, telemetry, captive-portal or connectivity probes
    "app.update.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "toolkit.telemetry.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
}


class BidiError(RuntimeError):
    pass


def _value(remote: dict) -> Any:
    """A BiDi RemoteValue as plain Python (objects as dicts, arrays as lists)."""
    kind = remote.get("type")
    if kind in ("undefined", "null"):
        return None
    if kind in ("string", "boolean"):
        return remote["value"]
    if kind == "number":
        value = remote["value"]
        return float("nan") if value == "NaN" else value
    if kind in ("array", "set"):
        return [_value(v) for v in remote.get("value", [])]
    if kind in ("object", "map"):
        return {(k if isinstance(k, str) else _value(k)): _value(v) for k, v in remote.get("value", [])}
    return remote.get("value")


def _local(value: Any) -> dict:
    """Plain Python as a BiDi LocalValue (an argument of a JavaScript function)."""
    if value is None:
        return {"type": "null"}
    if isinstance(value, bool):
        return {"type": "boolean", "value": value}
    if isinstance(value, (int, float)):
        return {"type": "number", "value": value}
    if isinstance(value, str):
        return {"type": "string", "value": value}
    if isinstance(value, (list, tuple)):
        return {"type": "array", "value": [_local(v) for v in value]}
    if isinstance(value, dict):
        return {"type": "object", "value": [[str(k), _local(v)] for k, v in value.items()]}
    raise TypeError(f"cannot pass {type(value).__name__} to JavaScript")


class Firefox:
    """One headless Firefox process with its own profile; :meth:`page` opens a tab."""

    def __init__(self, prefs: Optional[dict[str, Any]] = None, log_path: Optional[str] = None) -> None:
        self.prefs = {**PREFS, **(prefs or {})}
        self.log_path = log_path
        self.profile = tempfile.mkdtemp(prefix="sfu-firefox-")
        self.proc: Optional[asyncio.subprocess.Process] = None
        self._http: Optional[aiohttp.ClientSession] = None
        self._ws: Optional[aiohttp.ClientWebSocketResponse] = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict]] = {}
        self._reader: Optional[asyncio.Task] = None
        self._log = None
        self.console: list[str] = []

    async def start(self, timeout: float = 60.0) -> Firefox:
        with open(os.path.join(self.profile, "user.js"), "w") as prefs:
            for name, value in self.prefs.items():
                prefs.write(f"user_pref({json.dumps(name)}, {json.dumps(value)});\n")
        env = {**os.environ, "MOZ_CRASHREPORTER_DISABLE": "1", "HOME": os.environ.get("HOME", "/root")}
        self.proc = await asyncio.create_subprocess_exec(
            FIREFOX, "--headless", "--no-remote", "--remote-debugging-port=0", "--profile", self.profile,
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True,
        )
        self._log = open(self.log_path, "a") if self.log_path else None
        try:
            endpoint = await asyncio.wait_for(self._endpoint(), timeout)
            self._http = aiohttp.ClientSession()
            self._ws = await self._http.ws_connect(endpoint + "/session", max_msg_size=0)
            self._reader = asyncio.ensure_future(self._read())
            await self.send("session.new", {"capabilities": {}})
            await self.send("session.subscribe", {"events": ["log.entryAdded"]})
        except BaseException:
            await self.close()  # never leave a browser behind
            raise
        return self

    async def _endpoint(self) -> str:
        assert self.proc is not None and self.proc.stderr is not None
        while True:
            line = (await self.proc.stderr.readline()).decode(errors="replace")
            if not line:
                raise BidiError(f"firefox exited ({await self.proc.wait()}) before listening")
            if self._log:
                self._log.write(line)
            marker = "WebDriver BiDi listening on "
            if marker in line:
                asyncio.ensure_future(self._drain())
                return line.split(marker, 1)[1].strip()

    async def _drain(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            if self._log:
                self._log.write(line.decode(errors="replace"))

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            future = self._pending.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)
            elif data.get("method") == "log.entryAdded":
                entry = data["params"]
                self.console.append(f"{entry.get('level')}: {entry.get('text')}")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BidiError("connection to firefox closed"))

    async def send(self, method: str, params: dict, timeout: float = 60.0) -> dict:
        assert self._ws is not None
        command_id = next(self._ids)
        future: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        await self._ws.send_str(json.dumps({"id": command_id, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, timeout)
        if reply.get("type") == "error":
            raise BidiError(f"{method}: {reply.get('error')}: {reply.get('message')}")
        return reply.get("result", {})

    async def page(self, url: str, init_script: Optional[str] = None) -> Page:
        """A new tab showing ``url`` (loaded); ``init_script`` runs in it before the page's own."""
        created = await self.send("browsingContext.create", {"type": "tab"})
        page = Page(self, created["context"])
        if init_script:
            await self.send("script.addPreloadScript", {
                "functionDeclaration": "() => {\n" + init_script + "\n}", "contexts": [page.context],
            })
        await page.goto(url)
        return page

    async def close(self) -> None:
        if self._ws is not None and not self._ws.closed:
            try:
                await self.send("browser.close", {}, timeout=10)
            except (BidiError, asyncio.TimeoutError, aiohttp.ClientError):
                pass
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
        if self._http is not None:
            await self._http.close()
        if self.proc is not None and self.proc.returncode is None:
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except asyncio.TimeoutError:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)  # its own process group (start_new_session)
                except ProcessLookupError:
                    pass
                await self.proc.wait()
        if self._log:
            self._log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    """One tab: navigate, evaluate JavaScript, wait for a condition."""

    def __init__(self, browser: Firefox, context: str) -> None:
        self.browser = browser
        self.context = context

    async def goto(self, url: str) -> None:
        await self.browser.send("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    async def js(self, function: str, *args: Any) -> Any:
        """Call a JavaScript function (source text, may be async) with JSON-able arguments."""
        result = await self.browser.send("script.callFunction", {
            "functionDeclaration": function,
            "arguments": [_local(a) for a in args],
            "target": {"context": self.context},
            "awaitPromise": True,
            "resultOwnership": "none",
        })
        if result.get("type") == "exception":
            details = result.get("exceptionDetails", {})
            raise BidiError(f"script error: {details.get('text')}")
        return _value(result["result"])

    async def wait_js(self, function: str, *args: Any, timeout: float = 20.0) -> Any:
        """Wait until the function returns something truthy; return it."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.js(function, *args)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {function!r}; console: {self.browser.console[-20:]}")
            await asyncio.sleep(0.1)
