"""A client of Janus's HTTP long-poll API: sessions, plugin handles, messages with JSEP, events.

    POST /janus                      {"janus": "create"}                  -> session id
    POST /janus/<session>            {"janus": "attach", "plugin": ...}   -> handle id
    POST /janus/<session>/<handle>   {"janus": "message", "body", "jsep"} -> "ack", then an event
    GET  /janus/<session>?maxev=N    long poll: the session's events (plugin replies, webrtcup, ...)
    POST /janus/<session>            {"janus": "keepalive"}

Synchronous plugin requests (VideoRoom ``create``) answer ``success`` with ``plugindata`` at once;
asynchronous ones (``join``, ``publish``, ``start``) answer ``ack`` and their result arrives as an
``event`` with the same transaction on the long poll. The reply parsing is pure (and unit-tested).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

VIDEOROOM = "janus.plugin.videoroom"
#: Long polls wait up to 30 s on the server; a keepalive at this period keeps a session past 60 s.
KEEPALIVE_SECONDS = 25.0
REQUEST_TIMEOUT = 15.0


class JanusError(Exception):
    """Janus refused a request (``"janus": "error"``) or a plugin answered with an error."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"janus error {code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class PluginReply:
    """What a plugin answered: its ``data`` and, when it negotiates, the JSEP it sent."""

    data: dict[str, Any]
    jsep: dict[str, Any] | None = None


def check(doc: Any) -> dict[str, Any]:
    """``doc`` if it is a Janus reply that is not an error; raises :class:`JanusError` otherwise."""
    if not isinstance(doc, dict) or not isinstance(doc.get("janus"), str):
        raise JanusError(0, f"not a Janus reply: {str(doc)[:200]}")
    if doc["janus"] == "error":
        error = doc.get("error") or {}
        raise JanusError(int(error.get("code", 0)), str(error.get("reason", "")))
    return doc


def created_id(doc: Any) -> int:
    """The id a ``create`` (session) or ``attach`` (handle) reply carries."""
    doc = check(doc)
    if doc["janus"] != "success" or not isinstance((doc.get("data") or {}).get("id"), int):
        raise JanusError(0, f"expected success with an id, got {str(doc)[:200]}")
    return int(doc["data"]["id"])


def plugin_reply(doc: Any) -> PluginReply:
    """The plugin's answer in a ``success`` or ``event`` reply (raises on Janus or plugin errors)."""
    doc = check(doc)
    plugindata = doc.get("plugindata")
    if not isinstance(plugindata, dict) or not isinstance(plugindata.get("data"), dict):
        raise JanusError(0, f"no plugin data in {str(doc)[:200]}")
    data = plugindata["data"]
    if "error_code" in data or "error" in data:
        raise JanusError(int(data.get("error_code", 0)), str(data.get("error", "")))
    jsep = doc.get("jsep")
    return PluginReply(data, jsep if isinstance(jsep, dict) else None)


def events(body: Any) -> list[dict[str, Any]]:
    """A long poll's answer as a list of events (one object without ``maxev``, a list with it)."""
    items = body if isinstance(body, list) else [body]
    return [e for e in items if isinstance(e, dict) and isinstance(e.get("janus"), str)]


def room_request(room: int, bitrate: int = 0) -> dict[str, Any]:
    """VideoRoom ``create`` for one pair's room: two publishers, VP8 + Opus. ``bitrate`` is the
    cap Janus announces to publishers by REMB (0: none); no periodic keyframe requests (fir_freq 0)."""
    return {"request": "create", "room": room, "publishers": 2, "bitrate": bitrate, "fir_freq": 0,
            "videocodec": "vp8", "audiocodec": "opus", "notify_joining": False}


def _post_sync(url: str, message: dict[str, Any], timeout: float = REQUEST_TIMEOUT) -> Any:
    request = urllib.request.Request(url, data=json.dumps(message).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def create_rooms(url: str, rooms: list[int], bitrate: int = 0) -> None:
    """Create ``rooms`` through the API (blocking; before the clients start), then drop the session:
    rooms made through the API live on until Janus stops."""
    url = url.rstrip("/")
    session = created_id(_post_sync(url, {"janus": "create", "transaction": "rooms"}))
    try:
        handle = created_id(_post_sync(f"{url}/{session}", {"janus": "attach", "plugin": VIDEOROOM, "transaction": "rooms"}))
        for room in rooms:
            message = {"janus": "message", "transaction": f"room{room}", "body": room_request(room, bitrate)}
            reply = plugin_reply(_post_sync(f"{url}/{session}/{handle}", message))
            if reply.data.get("videoroom") != "created":
                raise JanusError(0, f"room {room} not created: {reply.data}")
    finally:
        _post_sync(f"{url}/{session}", {"janus": "destroy", "transaction": "rooms"})


@dataclass
class SessionLog:
    """What the session's long poll saw besides replies: events by kind, per handle."""

    kinds: Counter[str] = field(default_factory=Counter)
    webrtcup_at: dict[int, float] = field(default_factory=dict)  #: handle -> time.time()
    slowlink: int = 0
    hangups: list[str] = field(default_factory=list)


class JanusSession:
    """One Janus session over HTTP, its long-poll reader and keepalive, and its plugin handles."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = url.rstrip("/")
        self.id: int | None = None
        self.log = SessionLog()
        self._transactions = (f"t{n}" for n in itertools.count(1))
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def _post(self, path: str, message: dict[str, Any]) -> dict[str, Any]:
        transaction = next(self._transactions)
        async with self.http.post(f"{self.url}{path}", json={**message, "transaction": transaction},
                                  timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) as response:
            return check(await response.json(content_type=None))

    async def create(self) -> None:
        self.id = created_id(await self._post("", {"janus": "create"}))
        self._tasks.append(asyncio.ensure_future(self._poll()))
        self._tasks.append(asyncio.ensure_future(self._keepalive()))

    async def attach(self, plugin: str = VIDEOROOM) -> JanusHandle:
        return JanusHandle(self, created_id(await self._post(f"/{self.id}", {"janus": "attach", "plugin": plugin})))

    async def message(self, handle: int, body: dict[str, Any], jsep: dict[str, Any] | None = None,
                      timeout: float = REQUEST_TIMEOUT) -> PluginReply:
        """Send a plugin message; the synchronous answer, or the event that answers it."""
        transaction = next(self._transactions)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[transaction] = future  # before posting: the event may beat the ack
        message: dict[str, Any] = {"janus": "message", "body": body, "transaction": transaction}
        if jsep is not None:
            message["jsep"] = jsep
        try:
            async with self.http.post(f"{self.url}/{self.id}/{handle}", json=message,
                                      timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) as response:
                doc = check(await response.json(content_type=None))
            if doc["janus"] != "ack":
                return plugin_reply(doc)
            return plugin_reply(await asyncio.wait_for(future, timeout))
        finally:
            self._waiting.pop(transaction, None)

    async def trickle_done(self, handle: int) -> None:
        """Tell Janus that every local candidate is known (they were all in the SDP)."""
        await self._post(f"/{self.id}/{handle}", {"janus": "trickle", "candidate": {"completed": True}})

    async def _poll(self) -> None:
        while True:
            try:
                async with self.http.get(f"{self.url}/{self.id}", params={"maxev": "10"},
                                         timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT + 40)) as response:
                    body = await response.json(content_type=None)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                await asyncio.sleep(0.2)
                continue
            for event in events(body):
                self._dispatch(event)

    def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event["janus"]
        self.log.kinds[kind] += 1
        future = self._waiting.get(str(event.get("transaction")))
        if kind == "event" and future is not None and not future.done():
            future.set_result(event)
        elif kind == "webrtcup" and isinstance(event.get("sender"), int):
            self.log.webrtcup_at[event["sender"]] = time.time()
        elif kind == "slowlink":
            self.log.slowlink += 1
        elif kind == "hangup":
            self.log.hangups.append(str(event.get("reason", "")))

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_SECONDS)
            try:
                await self._post(f"/{self.id}", {"janus": "keepalive"})
            except (aiohttp.ClientError, asyncio.TimeoutError, JanusError):
                pass

    async def destroy(self) -> None:
        """Stop polling and destroy the session on the server (its handles hang up)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self.id is not None:
            try:
                await self._post(f"/{self.id}", {"janus": "destroy"})
            except (aiohttp.ClientError, asyncio.TimeoutError, JanusError):
                pass


@dataclass
class JanusHandle:
    session: JanusSession
    id: int

    async def message(self, body: dict[str, Any], jsep: dict[str, Any] | None = None,
                      timeout: float = REQUEST_TIMEOUT) -> PluginReply:
        return await self.session.message(self.id, body, jsep, timeout)

    async def trickle_done(self) -> None:
        await self.session.trickle_done(self.id)
