"""Property-based fuzzing of the signaling handler over a real WebSocket (hypothesis).

A real server runs in a background event loop with a paired pair of headless clients streaming
stamped video. Hypothesis sends batches of random JSON, mutated valid messages (offers with real
SDP included), random text, invalid UTF-8, random bytes and huge strings on another connection.
Properties: every reply is a JSON object of a known type (errors with a code listed in
docs/protocol.md), the connection is only ever closed with a protocol close code, the server logs no
traceback or error, and the pair keeps receiving each other's stamped frames throughout.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
import traceback
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

import aiohttp
import pytest
from aiortc import RTCPeerConnection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfu.config import Config
from sfu.headless.client import HeadlessClient
from sfu.media.aiortc_hooks.ice import set_host_addresses

from .ops_helpers import running

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER_TYPES = {"welcome", "answer", "waiting", "paired", "partner_left", "idle", "chat", "online", "error"}
#: Close codes the server may use: 1007 invalid UTF-8, 1008 fatal protocol error, 1009 too big.
ALLOWED_CLOSE = {1007, 1008, 1009}
MAX_MESSAGE = 4096
HARD_MESSAGE = 64 * 1024
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1"))  # multiplier for longer local runs


def documented_error_codes() -> set[str]:
    text = open(os.path.join(ROOT, "docs", "protocol.md")).read()
    table = text.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    codes = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            codes |= set(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return codes


ERROR_CODES = documented_error_codes()


class Problems(logging.Handler):
    """Collects log records that show a server-side failure."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.records.append(logging.Formatter().format(record))


@dataclass
class Arena:
    loop: asyncio.AbstractEventLoop
    url: str = ""
    ws_url: str = ""
    a: Optional[HeadlessClient] = None
    b: Optional[HeadlessClient] = None
    offer_sdp: str = ""
    http: Optional[aiohttp.ClientSession] = None
    ws: Optional[aiohttp.ClientWebSocketResponse] = None
    loop_errors: list[str] = field(default_factory=list)
    sent: int = 0
    replies: int = 0
    closes: dict[int, int] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)
    sentinel: int = 0
    batches: int = 0

    def run(self, coro: Any, timeout: float = 120.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def reconnect(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        assert self.http is not None
        self.ws = await self.http.ws_connect(self.ws_url, max_msg_size=0)
        await self.read_until(lambda m: m.get("type") == "welcome")

    async def read_until(self, done) -> bool:
        """Read and check replies until ``done(reply)``; False if the server closed the socket."""
        assert self.ws is not None
        while True:
            msg = await self.ws.receive(timeout=60)
            if msg.type != aiohttp.WSMsgType.TEXT:
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING), msg
                # The code the server sent; ws.close_code says 1006 when our close reply could not be
                # written because the server had already dropped the connection.
                code = msg.data if msg.type == aiohttp.WSMsgType.CLOSE else (self.ws.close_code or 0)
                assert code in ALLOWED_CLOSE, f"closed with {code}"
                self.closes[code] = self.closes.get(code, 0) + 1
                return False
            reply = json.loads(msg.data)
            self.replies += 1
            check_reply(reply)
            if reply["type"] == "error":
                self.codes[reply["code"]] = self.codes.get(reply["code"], 0) + 1
            if done(reply):
                return True

    async def exchange(self, frames: list[tuple[str, Any]]) -> None:
        """Send a batch, then a marker; read every reply up to the marker's error."""
        if self.ws is None or self.ws.closed:
            await self.reconnect()
        assert self.ws is not None
        negotiated = False
        for kind, data in frames:
            self.sent += 1
            try:
                if kind == "text":
                    await self.ws.send_str(data)
                elif kind == "bytes":
                    await self.ws.send_bytes(data)
                else:  # raw text frame, possibly invalid UTF-8
                    await self.ws.send_frame(data, aiohttp.WSMsgType.TEXT)
            except (ConnectionError, RuntimeError):
                break  # the server closed the socket (e.g. a fatal error); read what it said
        self.sentinel += 1
        self.batches += 1
        marker = f"marker-{self.sentinel}"
        try:
            await self.ws.send_str(json.dumps({"type": marker}))
        except (ConnectionError, RuntimeError):
            pass

        def done(reply: dict) -> bool:
            nonlocal negotiated
            negotiated = negotiated or reply["type"] == "answer"
            return reply.get("code") == "unknown_type" and marker in reply.get("message", "")

        if not await self.read_until(done) or negotiated:
            await self.reconnect()  # also frees a fuzz peer connection that will never connect


def check_reply(reply: Any) -> None:
    assert isinstance(reply, dict), reply
    assert reply.get("type") in SERVER_TYPES, reply
    if reply["type"] == "error":
        assert reply.get("code") in ERROR_CODES, reply
        assert reply["code"] != "internal_error", reply
        assert isinstance(reply.get("message"), str), reply


@pytest.fixture(scope="module")
def arena() -> Iterator[Arena]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzz-loop", daemon=True)
    thread.start()
    arena = Arena(loop)
    def on_loop_error(_loop: asyncio.AbstractEventLoop, context: dict) -> None:
        exc = context.get("exception")
        arena.loop_errors.append(context.get("message", "") + "\n" + ("".join(traceback.format_exception(exc)) if exc else ""))

    loop.set_exception_handler(on_loop_error)
    problems = Problems()
    logging.getLogger().addHandler(problems)
    config = Config(
        host="127.0.0.1",
        port=0,
        online_interval=0.2,
        message_rate=100_000,
        message_burst=100_000,
        max_message_bytes=MAX_MESSAGE,
        hard_message_bytes=HARD_MESSAGE,
        max_chat_length=50,
        ice_timeout=5.0,
    )
    context = running(config)

    async def setup() -> None:
        srv = await context.__aenter__()
        arena.url, arena.ws_url = srv.url, srv.ws_url
        arena.a, arena.b = HeadlessClient(srv.url, 101), HeadlessClient(srv.url, 102)
        await arena.a.connect()
        await arena.b.connect()
        await arena.a.start()
        await arena.b.start()
        await arena.a.expect("paired")
        await arena.b.expect("paired")
        await arena.a.wait_frame_from(102, timeout=30)
        await arena.b.wait_frame_from(101, timeout=30)
        pc = RTCPeerConnection()
        pc.addTransceiver("audio", direction="sendrecv")
        pc.addTransceiver("video", direction="sendrecv")
        set_host_addresses(pc, ["127.0.0.1"])
        await pc.setLocalDescription(await pc.createOffer())
        arena.offer_sdp = pc.localDescription.sdp
        await pc.close()
        arena.http = aiohttp.ClientSession()

    async def teardown() -> None:
        if arena.ws is not None:
            await arena.ws.close()
        if arena.http is not None:
            await arena.http.close()
        for client in (arena.a, arena.b):
            if client is not None:
                await client.close()
        await context.__aexit__(None, None, None)

    try:
        arena.run(setup())
        yield arena
    finally:
        arena.run(teardown())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        logging.getLogger().removeHandler(problems)
    assert not problems.records, "\n".join(problems.records[:2])
    assert not arena.loop_errors, "\n".join(arena.loop_errors[:2])


# -- strategies -----------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
types = st.sampled_from(["offer", "start", "next", "stop", "chat", "answer", "paired", "error", "", "OFFER"]) | st.text(max_size=12)
random_objects = st.builds(
    lambda kind, extra: {**extra, "type": kind},
    types | json_values,
    st.dictionaries(st.sampled_from(["sdp", "text", "id", "partner", "count"]) | st.text(max_size=6), json_values, max_size=3),
)


def text_frames(values: st.SearchStrategy) -> st.SearchStrategy:
    return values.map(lambda v: ("text", json.dumps(v)))


@st.composite
def mutated(draw: st.DrawFn, sdp: str) -> tuple[str, Any]:
    valid = [
        {"type": "offer", "sdp": sdp},
        {"type": "start"},
        {"type": "next"},
        {"type": "stop"},
        {"type": "chat", "text": "hello"},
    ]
    message = dict(draw(st.sampled_from(valid)))
    how = draw(st.sampled_from(["field", "drop", "sdp", "truncate", "splice", "as-is"]))
    if how == "field":
        key = draw(st.sampled_from(["type", "sdp", "text"]))
        message[key] = draw(json_values)
    elif how == "drop":
        message.pop(draw(st.sampled_from(sorted(message))))
    elif how == "sdp":
        lines = sdp.split("\r\n")
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(lines) - 1))
            op = draw(st.sampled_from(["delete", "duplicate", "garble", "numbers"]))
            if op == "delete":
                lines.pop(i)
            elif op == "duplicate":
                lines.insert(i, lines[i])
            elif op == "garble":
                lines[i] = draw(st.text(max_size=40))
            else:
                lines[i] = re.sub(r"\d+", lambda _m: str(draw(st.integers(-(2**40), 2**40))), lines[i])
            if not lines:
                break
        message = {"type": "offer", "sdp": "\r\n".join(lines)}
    text = json.dumps(message)
    if how == "truncate":
        text = text[: draw(st.integers(0, max(0, len(text) - 1)))]
    elif how == "splice":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(max_size=10)) + text[at:]
    return ("text", text)


huge = st.sampled_from([MAX_MESSAGE + 1, MAX_MESSAGE * 4, HARD_MESSAGE + 10]).flatmap(
    lambda n: st.sampled_from(
        [
            ("text", "x" * n),
            ("text", json.dumps({"type": "chat", "text": "é" * (n // 2)})),
            ("text", json.dumps({"type": "offer", "sdp": "v=0\r\n" * (n // 5)})),
            ("bytes", b"\0" * n),
        ]
    )
)
raw_frames = st.one_of(
    st.binary(max_size=200).map(lambda b: ("bytes", b)),
    st.text(max_size=200).map(lambda t: ("text", t)),
    st.binary(min_size=1, max_size=50).map(lambda b: ("raw", b"\xff" + b)),  # never valid UTF-8
    text_frames(json_values),
    huge,
)

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")

FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)


def streaming_check(arena: Arena, since: float) -> None:
    """Both clients got their partner's stamped frames during the fuzzing, and only those."""
    assert arena.a is not None and arena.b is not None
    for client, partner in ((arena.a, 102), (arena.b, 101)):
        arena.run(client.wait_frame_from(partner, since=time.monotonic(), timeout=30))
        fresh = [f for f in client.frames_since(since) if f.stamp is not None]
        assert len(fresh) >= 2, f"client {client.sender_id} received no frames while fuzzing"
        assert {f.stamp.sender for f in fresh} == {partner}
        frames = [f.stamp.frame for f in fresh]
        assert frames == sorted(frames), "frames arrived out of order"
        assert not client.socket_closed and not client.messages("partner_left")
    print(f"streaming: {len(arena.a.frames_since(since))} and {len(arena.b.frames_since(since))} frames received meanwhile")


def report(arena: Arena, name: str, started: float) -> None:
    print(
        f"\n{name}: {arena.sent} frames fuzzed in {arena.batches} batches, {arena.replies} replies checked, "
        f"server closes by code {arena.closes}, errors by code {dict(sorted(arena.codes.items()))}, "
        f"{time.monotonic() - started:.1f} s"
    )
    arena.sent = arena.replies = arena.batches = 0
    arena.closes, arena.codes = {}, {}


def test_random_json(arena: Arena) -> None:
    started = time.monotonic()

    @settings(FUZZ, max_examples=300 * EXAMPLES)
    @given(st.lists(text_frames(random_objects | json_values), min_size=1, max_size=12))
    def check(frames: list[tuple[str, Any]]) -> None:
        arena.run(arena.exchange(frames))

    check()
    report(arena, "random JSON", started)
    streaming_check(arena, started)


def test_mutated_valid_messages(arena: Arena) -> None:
    started = time.monotonic()

    @settings(FUZZ, max_examples=300 * EXAMPLES)
    @given(st.lists(mutated(arena.offer_sdp), min_size=1, max_size=8))
    def check(frames: list[tuple[str, Any]]) -> None:
        arena.run(arena.exchange(frames))

    check()
    report(arena, "mutated messages", started)
    streaming_check(arena, started)


def test_random_frames_bytes_and_huge_strings(arena: Arena) -> None:
    started = time.monotonic()

    @settings(FUZZ, max_examples=200 * EXAMPLES)
    @given(st.lists(raw_frames, min_size=1, max_size=6))
    def check(frames: list[tuple[str, Any]]) -> None:
        arena.run(arena.exchange(frames))

    check()
    report(arena, "random frames", started)
    streaming_check(arena, started)
