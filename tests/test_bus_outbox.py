"""The message bus holds what it cannot send while Redis is unreachable: in order, bounded in age
and size; delivered once Redis answers (a real redis-server)."""

from __future__ import annotations

from redis.asyncio import Redis

from sfu.cluster import bus as bus_module
from sfu.cluster.bus import Bus
from sfu.pairing.shared import connect

from .redis_server import RedisServer, redis_server, unique_prefix  # noqa: F401  (fixture)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_held_while_unreachable_then_sent_in_order(redis_server: RedisServer, monkeypatch) -> None:  # noqa: F811
    clock = Clock()
    away = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)  # nothing listens there
    prefix = unique_prefix()
    bus = Bus(away, prefix, "me", lambda m: None, clock=clock)
    for n in range(3):
        await bus.send("other", {"t": "chat", "n": n})
    assert bus.waiting == 3 and not await bus.flush()
    clock.now += bus_module.OUTBOX_SECONDS + 1  # the first three are too old by now
    await bus.send("other", {"t": "chat", "n": 3})
    assert bus.waiting == 1 and bus.expired == 3
    monkeypatch.setattr(bus_module, "OUTBOX_BYTES", 40)  # room for two of these messages (18 bytes each)
    await bus.send("other", {"t": "chat", "n": 4})
    await bus.send("other", {"t": "chat", "n": 5})
    assert bus.waiting == 2 and bus.expired == 4
    await away.aclose()

    reachable = await connect(redis_server.url)
    bus.redis = reachable
    assert await bus.flush() and bus.waiting == 0
    await bus.send("other", {"t": "chat", "n": 6})
    entries = await reachable.xrange(bus.stream("other"))
    assert [e[1][b"m"] for e in entries] == [b'{"t":"chat","n":4}', b'{"t":"chat","n":5}', b'{"t":"chat","n":6}']
    await reachable.aclose()
