"""Limits: participant cap, per-address connection caps and rates, message rate, sizes, timeouts."""

from __future__ import annotations

import asyncio
import dataclasses

import aiohttp
from aiortc import RTCPeerConnection

from sfu.config import Config
from sfu.headless.client import HeadlessClient
from sfu.media.aiortc_hooks.ice import set_host_addresses

from .ops_helpers import RawSocket, running

BASE = Config(host="127.0.0.1", port=0, online_interval=0.2)


def cfg(**changes) -> Config:
    return dataclasses.replace(BASE, **changes)


async def get_json(url: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as response:
            return response.status, await response.json()


async def test_server_full_and_readiness() -> None:
    async with running(cfg(max_participants=2)) as srv:
        assert (await get_json(srv.url + "/readyz"))[0] == 200
        a, b = await RawSocket.open(srv.ws_url), await RawSocket.open(srv.ws_url)
        await a.until(lambda m: m["type"] == "welcome")
        await b.until(lambda m: m["type"] == "welcome")
        status, body = await get_json(srv.url + "/readyz")
        assert (status, body["reason"]) == (503, "full")
        c = await RawSocket.open(srv.ws_url)
        seen = await c.closed()
        assert [m["type"] for m in seen] == ["error"] and seen[0]["code"] == "server_full"
        assert seen[0]["retry_after"] == 15.0
        assert c.ws.close_code == 1013
        assert len(srv.server.sessions) == 2
        await a.close()
        for _ in range(100):
            if (await get_json(srv.url + "/readyz"))[0] == 200:
                break
            await asyncio.sleep(0.05)
        assert (await get_json(srv.url + "/readyz"))[0] == 200
        d = await RawSocket.open(srv.ws_url)
        await d.until(lambda m: m["type"] == "welcome")
        for s in (b, c, d):
            await s.close()


async def test_per_address_concurrent_connections() -> None:
    async with running(cfg(ip_limits_exempt=[], ip_max_connections=3, ip_connection_burst=100)) as srv:
        sockets = [await RawSocket.open(srv.ws_url) for _ in range(3)]
        for s in sockets:
            await s.until(lambda m: m["type"] == "welcome")
        extra = await RawSocket.open(srv.ws_url)
        seen = await extra.closed()
        assert seen[0]["code"] == "too_many_connections"
        await sockets[0].close()
        await asyncio.sleep(0.3)
        again = await RawSocket.open(srv.ws_url)
        await again.until(lambda m: m["type"] == "welcome")
        for s in [*sockets, extra, again]:
            await s.close()


async def test_per_address_connection_rate_and_forwarded_for() -> None:
    config = cfg(ip_limits_exempt=[], ip_connection_rate=0.01, ip_connection_burst=3, trust_forwarded_for=True)
    async with running(config) as srv:
        headers = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7"}
        for _ in range(3):
            s = await RawSocket.open(srv.ws_url, headers)
            await s.until(lambda m: m["type"] == "welcome")
            await s.close()
        refused = await RawSocket.open(srv.ws_url, headers)
        assert (await refused.closed())[0]["code"] == "rate_limited"
        await refused.close()
        # another client behind the same proxy is not affected
        other = await RawSocket.open(srv.ws_url, {"X-Forwarded-For": "198.51.100.8"})
        await other.until(lambda m: m["type"] == "welcome")
        await other.close()
        assert srv.server.addresses.open == {}


async def test_message_rate_size_and_chat_length() -> None:
    config = cfg(message_rate=0.5, message_burst=5, max_message_bytes=1000, max_chat_length=10)
    async with running(config) as srv:
        s = await RawSocket.open(srv.ws_url)
        await s.until(lambda m: m["type"] == "online")
        await s.send({"type": "chat", "text": "x" * 11})
        assert (await s.until(lambda m: m["type"] == "error"))["code"] == "chat_too_long"
        await s.send({"type": "chat", "text": "x" * 2000})
        assert (await s.until(lambda m: m["type"] == "error"))["code"] == "message_too_large"
        for _ in range(20):
            await s.send({"type": "stop"})
        replies = [await s.until(lambda m: m["type"] in ("idle", "error")) for _ in range(20)]
        codes = [m.get("code", m["type"]) for m in replies]
        assert codes.count("rate_limited") >= 12, codes  # burst of 5 (2 used) + one token per 2 s
        assert set(codes) <= {"idle", "rate_limited"}
        await asyncio.sleep(2.5)  # the bucket refills; the connection stayed open
        await s.send({"type": "stop"})
        assert (await s.until(lambda m: m["type"] in ("idle", "error")))["type"] == "idle"
        await s.close()


async def test_no_offer_timeout() -> None:
    async with running(cfg(offer_timeout=1.0)) as srv:
        s = await RawSocket.open(srv.ws_url)
        seen = await s.closed(timeout=20)
        errors = [m for m in seen if m["type"] == "error"]
        assert [e["code"] for e in errors] == ["timeout"] and "no offer" in errors[0]["message"]
        await s.close()
        assert not srv.server.sessions


async def test_ice_never_connects_timeout() -> None:
    async with running(cfg(ice_timeout=1.5)) as srv:
        s = await RawSocket.open(srv.ws_url)
        pc = RTCPeerConnection()
        pc.addTransceiver("audio", direction="sendrecv")
        set_host_addresses(pc, ["127.0.0.1"])
        await pc.setLocalDescription(await pc.createOffer())
        await s.send({"type": "offer", "sdp": pc.localDescription.sdp})
        await pc.close()  # the client vanishes: nobody answers the server's connectivity checks
        seen = await s.closed(timeout=30)
        assert seen[-1]["type"] == "error" and seen[-1]["code"] == "timeout", seen
        assert "did not connect" in seen[-1]["message"]
        await s.close()
        for _ in range(50):
            if not srv.server.sessions:
                break
            await asyncio.sleep(0.1)
        assert not srv.server.sessions


async def test_idle_timeout_spares_waiting_participants() -> None:
    async with running(cfg(idle_timeout=3.0)) as srv:
        idle = HeadlessClient(srv.url, 1, send_video=False)
        waiting = HeadlessClient(srv.url, 2, send_video=False)
        try:
            await waiting.connect()
            await waiting.start()
            await idle.connect()
            await waiting.expect("waiting")
            error = await idle.expect("error", timeout=20)
            assert error["code"] == "timeout" and "idle" in error["message"]
            await idle.expect("_closed", timeout=10)
            await asyncio.sleep(1.0)
            assert not waiting.socket_closed
            assert not [m for m in waiting.messages("error")]
        finally:
            await idle.close()
            await waiting.close()


async def test_draining_server_is_not_ready_and_refuses_newcomers() -> None:
    async with running(cfg()) as srv:
        s = await RawSocket.open(srv.ws_url)
        await s.until(lambda m: m["type"] == "welcome")
        await srv.server.shutdown()
        seen = await s.closed()
        assert seen[-1]["code"] == "shutting_down"
        status, body = await get_json(srv.url + "/readyz")
        assert (status, body["reason"]) == (503, "draining")
        status, body = await get_json(srv.url + "/healthz")
        assert (status, body["status"]) == (200, "draining")  # alive, just not taking anyone
        late = await RawSocket.open(srv.ws_url)
        assert [m["code"] for m in await late.closed()] == ["shutting_down"]
        for sock in (s, late):
            await sock.close()
