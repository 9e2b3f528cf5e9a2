"""The browser's protocol client (client/protocol.js) on its own, without the page: two clients in
one tab against ``sfu serve``, driven only through the library's methods and events, as another
UI would use it. Real headless Chromium, fake camera and microphone.
"""

from __future__ import annotations

import os
import sys

import pytest

if os.environ.get("SFU_SKIP_BROWSER") == "1":
    pytest.skip("real-browser tests disabled by SFU_SKIP_BROWSER=1", allow_module_level=True)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser_helpers as bh  # noqa: E402
from browser_helpers import WAIT_MS  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

#: The modules another UI would take: none of them may touch the page.
LIBRARY = ("protocol.js", "peer.js", "signaling.js")

#: Two ProtocolClients in one tab, every event they emit logged on window.events.
SETUP = """async () => {
  const { ProtocolClient } = await import('/protocol.js');
  const { signalingUrl } = await import('/signaling.js');
  const types = ['welcome', 'statechange', 'waiting', 'paired', 'partner_left', 'idle', 'chat', 'online',
                 'error', 'negotiationerror', 'remotestream', 'connectionstate', 'disconnected'];
  window.events = [];
  window.clients = {};
  for (const name of ['a', 'b']) {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    const client = new ProtocolClient(signalingUrl('/ws'), { localStream: stream });
    for (const type of types) {
      client.addEventListener(type, (e) => {
        const detail = { ...e.detail };
        if ('stream' in detail) detail.stream = detail.stream && detail.stream.getTracks().map((t) => t.kind).sort();
        window.events.push({ name, type, detail });
      });
    }
    await client.setLocalTracks({ audio: stream.getAudioTracks()[0], video: stream.getVideoTracks()[0] });
    client.connect();
    window.clients[name] = client;
  }
}"""

INBOUND_VIDEO_BYTES = """async (name) => {
  const stats = await window.clients[name].pc.getStats();
  let bytes = 0;
  stats.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') bytes = s.bytesReceived; });
  return bytes;
}"""


@pytest.fixture(scope="module")
def server():
    srv = bh.ServerProcess(log_name="browser-protocol-server.log").start()
    yield srv
    srv.stop()


@pytest.fixture
def page(server):
    if not os.path.exists(bh.CHROMIUM):
        pytest.fail(f"{bh.CHROMIUM} is missing (or set SFU_SKIP_BROWSER=1 to skip the browser tests)")
    with sync_playwright() as pw:
        browser = bh.launch(pw)
        try:
            page = browser.new_page()
            page.set_default_timeout(WAIT_MS)
            # Any page of the server's origin will do: the library is imported, the app is not loaded.
            page.goto(server.url + "/healthz")
            yield page
        finally:
            browser.close()


def events(page, name: str, type_: str) -> list[dict]:
    return page.evaluate("([n, t]) => window.events.filter((e) => e.name === n && e.type === t).map((e) => e.detail)",
                         [name, type_])


def wait(page, expression: str, arg=None) -> None:
    page.wait_for_function(expression, arg=arg, timeout=WAIT_MS, polling=100)


def test_library_modules_do_not_touch_the_page():
    for name in LIBRARY:
        source = (bh.ROOT / "client" / name).read_text()
        assert "document" not in source, f"client/{name} uses the DOM"


def test_protocol_client_pairs_chats_and_switches_without_the_page(page):
    page.evaluate(SETUP)
    wait(page, "() => window.clients.a.negotiated && window.clients.b.negotiated")
    ids = page.evaluate("() => [window.clients.a.id, window.clients.b.id]")
    assert all(isinstance(i, str) and i for i in ids) and ids[0] != ids[1]
    assert events(page, "a", "welcome")[0]["reconnect"] is False
    wait(page, "() => window.clients.a.online === 2")

    # Start on both: the server pairs them with each other.
    assert page.evaluate("() => window.clients.a.start()") is True
    assert page.evaluate("() => window.clients.a.start()") is False, "start while waiting is refused"
    page.evaluate("() => window.clients.b.start()")
    wait(page, "() => window.clients.a.state === 'paired' && window.clients.b.state === 'paired'")
    assert page.evaluate("() => [window.clients.a.partner, window.clients.b.partner]") == [ids[1], ids[0]]
    assert events(page, "a", "paired") == [{"partner": ids[1]}]
    changes = [(c["previous"], c["state"], c["reason"]) for c in events(page, "b", "statechange")]
    assert changes[0] == ("idle", "waiting", "start") and changes[-1][1:] == ("paired", "paired"), changes

    # Media: the partner's audio and video arrive on the one peer connection.
    wait(page, "() => window.events.some((e) => e.name === 'a' && e.type === 'remotestream'"
               " && e.detail.stream && e.detail.stream.length === 2)")
    wait(page, "() => window.clients.a.pc.connectionState === 'connected'")
    assert events(page, "a", "connectionstate")[-1] == {"state": "connected"}
    first = page.evaluate(INBOUND_VIDEO_BYTES, "a")
    wait(page, f"async () => (await ({INBOUND_VIDEO_BYTES})('a')) > {first}")

    # Chat goes to the partner only, as text.
    assert page.evaluate("() => window.clients.a.sendChat('<b>hi</b>')") is True
    wait(page, "() => window.events.some((e) => e.name === 'b' && e.type === 'chat')")
    assert events(page, "b", "chat") == [{"text": "<b>hi</b>"}]
    assert events(page, "a", "chat") == []

    # Next: b looks again at once; a is told its partner left and is put back in the queue.
    assert page.evaluate("() => window.clients.b.next()") is True
    assert page.evaluate("() => window.clients.b.next()") is False, "a second Next within 300 ms is ignored"
    assert page.evaluate("() => [window.clients.b.state, window.clients.b.partner]") == ["waiting", None]
    wait(page, "() => window.events.some((e) => e.name === 'a' && e.type === 'partner_left')")
    last = events(page, "a", "statechange")[-1]
    assert (last["previous"], last["state"], last["reason"]) == ("paired", "waiting", "partner_left")

    # Stop: idle, confirmed by the server; no peer connection was ever replaced.
    assert page.evaluate("() => window.clients.a.stop()") is True
    wait(page, "() => window.events.some((e) => e.name === 'a' && e.type === 'idle')")
    assert page.evaluate("() => [window.clients.a.state, window.clients.a.want, window.clients.a.stopsInFlight]") \
        == ["idle", False, 0]
    assert page.evaluate("() => [window.clients.a.pcCount, window.clients.b.pcCount]") == [1, 1]
    assert events(page, "a", "error") == [] and events(page, "b", "error") == []
