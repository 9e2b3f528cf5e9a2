"""A participant for the simulated-network tests, run as a process inside a network namespace.

    python tests/nat_peer.py visit --url URL --sender N --partner M [--host-address IP]
    python tests/nat_peer.py p2p --role offer|answer --stun URL
    python tests/nat_peer.py turn-alloc --server HOST:PORT --username U --credential C
    python tests/nat_peer.py browser --url URL --sender N --partner M

Each mode prints ONE JSON line with what it saw (every message, SDP and remote address, the chosen
candidate pair), then keeps its connection open until its stdin closes, so that its partner can
finish too. ``p2p`` exchanges SDP over stdin/stdout (one JSON line each way) instead of a server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription  # noqa: E402

from sfu.headless import stamp as stamps  # noqa: E402
from sfu.headless.client import HeadlessClient  # noqa: E402
from sfu.media.aiortc_hooks import testing  # noqa: E402

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def emit(result: dict) -> None:
    print(json.dumps(result), flush=True)


async def until_stdin_closes(limit: float) -> None:
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.read), limit)
    except asyncio.TimeoutError:
        pass


async def read_line() -> dict:
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    return json.loads(line)


# -- through the server ----------------------------------------------------------------------------
async def visit(args: argparse.Namespace) -> None:
    client = HeadlessClient(
        args.url, args.sender, width=320, height=240, fps=10, host_addresses=args.host_address or ()
    )
    result: dict[str, Any] = {"ok": False}
    started = time.monotonic()
    try:
        await client.connect(timeout=args.timeout)
        await client.wait_connected(timeout=args.timeout)
        result["connected_after"] = round(time.monotonic() - started, 2)
        await client.start()
        await client.expect("paired", timeout=args.timeout)
        await client.wait_frame_from(args.partner, timeout=args.timeout)
        result["frame_after"] = round(time.monotonic() - started, 2)
        result["ok"] = True
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    try:
        result["messages"] = client.messages()
        result["state"] = client.pc.connectionState if client.pc else None
        result["remote_addresses"] = sorted(testing.remote_addresses(client.pc)) if client.pc else []
        result["selected"] = testing.selected_pairs(client.pc) if client.pc else []
        result["partner_stamps"] = sum(1 for f in client.received.frames if f.stamp and f.stamp.sender == args.partner)
        emit(result)
        if result["ok"]:
            await until_stdin_closes(args.timeout)
    finally:
        await client.close()


# -- directly, peer to peer (the control) ----------------------------------------------------------
async def p2p(args: argparse.Namespace) -> None:
    servers = [RTCIceServer(urls=args.stun)] if args.stun else []
    pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
    result: dict[str, Any] = {}
    try:
        if args.role == "offer":
            pc.createDataChannel("probe")
            await pc.setLocalDescription(await pc.createOffer())
            emit({"sdp": pc.localDescription.sdp})
            answer = await read_line()
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        else:
            offer = await read_line()
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            emit({"sdp": pc.localDescription.sdp})
        deadline = time.monotonic() + args.wait
        while pc.connectionState != "connected" and time.monotonic() < deadline:
            if pc.connectionState in ("failed", "closed"):
                break
            await asyncio.sleep(0.1)
        result = {
            "connected": pc.connectionState == "connected",
            "state": pc.connectionState,
            "local_sdp": pc.localDescription.sdp,
            "selected": testing.selected_pairs(pc),
        }
        emit(result)
        if result["connected"]:
            await until_stdin_closes(args.wait)
    finally:
        await pc.close()


# -- a bare TURN allocation ------------------------------------------------------------------------
async def turn_alloc(args: argparse.Namespace) -> None:
    """Allocate on a TURN server over TCP, then ask it to relay to each ``--peer``."""
    host, port = args.server.rsplit(":", 1)
    result: dict[str, Any] = {"allocated": False}
    allocation = None
    try:
        allocation = await testing.allocate_turn_tcp((host, int(port)), args.username, args.credential, 15)
        result.update(allocated=True, relayed=list(allocation.relayed), peers={})
        for number, peer in enumerate(args.peer):
            peer_host, peer_port = peer.rsplit(":", 1)
            try:
                await asyncio.wait_for(allocation.bind_channel(0x4000 + number, (peer_host, int(peer_port))), 15)
                result["peers"][peer] = "allowed"
            except Exception as exc:
                result["peers"][peer] = f"{type(exc).__name__}: {exc}"
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        if allocation is not None:
            allocation.close()
    emit(result)


# -- a real browser --------------------------------------------------------------------------------
BROWSER_JS = r"""
async ({wsUrl, bits, partner, timeoutMs}) => {
  const out = {ok: false, messages: [], remoteCandidates: [], secureContext: window.isSecureContext};
  try {
    // The camera is only offered on HTTPS (or localhost): the reason for the reverse proxy.
    const cam = await navigator.mediaDevices.getUserMedia({video: true});
    out.camera = cam.getVideoTracks().length > 0;
    cam.getTracks().forEach(t => t.stop());
  } catch (e) {
    out.camera = false;
  }
  const W = 320, H = 240;
  const crc16 = (bytes) => {
    let c = 0xFFFF;
    for (const b of bytes) {
      c ^= b << 8;
      for (let i = 0; i < 8; i++) c = (c & 0x8000) ? ((c << 1) ^ 0x1021) & 0xFFFF : (c << 1) & 0xFFFF;
    }
    return c;
  };
  const readStamp = (img, w, h) => {
    const offs = [0.3, 0.5, 0.7], means = [];
    for (let r = 0; r < 4; r++) for (let c = 0; c < 24; c++) {
      let sum = 0;
      for (const oy of offs) for (const ox of offs) {
        const y = Math.floor((r + oy) * h / 16), x = Math.floor((c + ox) * w / 24), i = (y * w + x) * 4;
        sum += 0.299 * img[i] + 0.587 * img[i + 1] + 0.114 * img[i + 2];
      }
      means.push(sum / 9);
    }
    const lo = Math.min(...means), hi = Math.max(...means), th = (lo + hi) / 2;
    if (hi - lo < 64 || means.some(m => Math.abs(m - th) < 0.2 * (hi - lo))) return null;
    const bytes = [];
    for (let b = 0; b < 12; b++) {
      let v = 0;
      for (let k = 0; k < 8; k++) v = (v << 1) | (means[b * 8 + k] > th ? 1 : 0);
      bytes.push(v);
    }
    if (((bytes[0] << 8) | bytes[1]) !== 0xC5A3) return null;
    if (crc16(bytes.slice(2, 10)) !== ((bytes[10] << 8) | bytes[11])) return null;
    return {sender: (bytes[2] << 8) | bytes[3]};
  };

  // What we send: the stamp in the top quarter, and a moving square so every frame changes.
  const src = document.createElement('canvas'); src.width = W; src.height = H;
  const g = src.getContext('2d');
  let tick = 0;
  const draw = () => {
    g.fillStyle = '#808080'; g.fillRect(0, 0, W, H);
    g.fillStyle = '#3050c0'; g.fillRect((tick++ * 7) % (W - 40), H / 2, 40, 40);
    for (let r = 0; r < 4; r++) for (let c = 0; c < 24; c++) {
      const y0 = Math.round(r * H / 16), y1 = Math.round((r + 1) * H / 16);
      const x0 = Math.round(c * W / 24), x1 = Math.round((c + 1) * W / 24);
      g.fillStyle = bits[r * 24 + c] ? '#ffffff' : '#000000'; g.fillRect(x0, y0, x1 - x0, y1 - y0);
    }
  };
  draw(); window.__timer = setInterval(draw, 66);
  const stream = src.captureStream(15);

  const ws = new WebSocket(wsUrl); window.__ws = ws;
  const inbox = []; let wake = () => {};
  ws.onmessage = (ev) => { const m = JSON.parse(ev.data); out.messages.push(m); inbox.push(m); wake(); };
  const next = async (type) => {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const i = inbox.findIndex(m => m.type === type);
      if (i >= 0) return inbox.splice(i, 1)[0];
      await new Promise(r => { wake = r; setTimeout(r, 200); });
    }
    throw new Error('no ' + type);
  };
  try {
    const welcome = await next('welcome');
    const pc = new RTCPeerConnection({iceServers: welcome.iceServers}); window.__pc = pc;
    pc.addTransceiver('audio', {direction: 'sendrecv'});
    pc.addTransceiver(stream.getVideoTracks()[0], {direction: 'sendrecv', streams: [stream]});
    const video = document.createElement('video');
    video.muted = true; video.autoplay = true; video.playsInline = true;
    document.body.appendChild(video);
    pc.ontrack = (ev) => { if (ev.track.kind === 'video') { video.srcObject = new MediaStream([ev.track]); video.play().catch(() => {}); } };
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise(r => {
      if (pc.iceGatheringState === 'complete') return r();
      pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') r(); });
    });
    out.offerSdp = pc.localDescription.sdp;
    ws.send(JSON.stringify({type: 'offer', sdp: pc.localDescription.sdp}));
    const answer = await next('answer');
    await pc.setRemoteDescription({type: 'answer', sdp: answer.sdp});
    ws.send(JSON.stringify({type: 'start'}));
    await next('paired');
    const rd = document.createElement('canvas'), rg = rd.getContext('2d', {willReadFrequently: true});
    const until = Date.now() + timeoutMs;
    while (Date.now() < until && !out.ok) {
      if (video.videoWidth > 0) {
        const w = video.videoWidth, h = video.videoHeight; rd.width = w; rd.height = h;
        rg.drawImage(video, 0, 0);
        const s = readStamp(rg.getImageData(0, 0, w, h).data, w, h);
        if (s && s.sender === partner) out.ok = true;
      }
      await new Promise(r => setTimeout(r, 100));
    }
    const stats = await pc.getStats();
    const byId = {}; stats.forEach(s => { byId[s.id] = s; });
    stats.forEach(s => {
      if (s.type === 'remote-candidate') out.remoteCandidates.push(s.address || s.ip || '');
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const pair = byId[s.selectedCandidatePairId];
        const local = byId[pair.localCandidateId], remote = byId[pair.remoteCandidateId];
        out.selected = {localType: local.candidateType, relayProtocol: local.relayProtocol || null,
                        remote: (remote.address || remote.ip) + ':' + remote.port};
      }
    });
    out.state = pc.connectionState;
  } catch (e) {
    out.error = String(e);
  }
  return out;
}
"""


def stamp_bits(sender: int) -> list[int]:
    """The 96 cells of a stamp from ``sender`` (row-major), via the stamp module's own drawing."""
    cells = np.zeros((stamps.ROW_DIVISOR, stamps.COLS), dtype=np.uint8)
    stamps.draw(cells, stamps.Stamp(sender, 0, 0))
    return [int(v > 128) for v in cells[: stamps.ROWS].reshape(-1)]


async def browser(args: argparse.Namespace) -> None:
    from playwright.async_api import async_playwright

    ws_url = "ws" + args.url[len("http"):] + "/ws"
    flags = CHROMIUM_FLAGS + (["--ignore-certificate-errors"] if args.insecure_tls else [])
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path="/usr/bin/chromium", args=flags)
        try:
            context = await chromium.new_context(ignore_https_errors=args.insecure_tls)
            page = await context.new_page()
            await page.goto(args.url + "/healthz")
            result = await page.evaluate(
                BROWSER_JS,
                {"wsUrl": ws_url, "bits": stamp_bits(args.sender), "partner": args.partner,
                 "timeoutMs": int(args.timeout * 1000)},
            )
            emit(result)
            if result.get("ok"):
                await until_stdin_closes(args.timeout)
        finally:
            await chromium.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    v = sub.add_parser("visit")
    v.add_argument("--url", required=True)
    v.add_argument("--sender", type=int, required=True)
    v.add_argument("--partner", type=int, required=True)
    v.add_argument("--host-address", action="append", default=[])
    v.add_argument("--timeout", type=float, default=40.0)
    q = sub.add_parser("p2p")
    q.add_argument("--role", choices=["offer", "answer"], required=True)
    q.add_argument("--stun", default=None)
    q.add_argument("--wait", type=float, default=10.0)
    t = sub.add_parser("turn-alloc")
    t.add_argument("--server", required=True)
    t.add_argument("--transport", default="tcp")
    t.add_argument("--username", required=True)
    t.add_argument("--credential", required=True)
    t.add_argument("--peer", action="append", default=[], metavar="IP:PORT")
    b = sub.add_parser("browser")
    b.add_argument("--url", required=True)
    b.add_argument("--sender", type=int, required=True)
    b.add_argument("--partner", type=int, required=True)
    b.add_argument("--timeout", type=float, default=40.0)
    b.add_argument("--insecure-tls", action="store_true", help="accept the test's self-signed certificates")
    args = parser.parse_args()
    run = {"visit": visit, "p2p": p2p, "turn-alloc": turn_alloc, "browser": browser}[args.mode]
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
