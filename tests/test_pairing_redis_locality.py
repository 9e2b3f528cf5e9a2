"""A shared pool prefers partners served by the same process (their media need not cross between
processes), but never keeps anyone waiting long for it; on a real redis-server."""

from __future__ import annotations

import random

from sfu.pairing import Paired, Waiting
from sfu.pairing.shared import Keys, ProcessId, RedisMatchmaker, connect
from sfu.pairing.shared.lua_search import LOCAL_PATIENCE

from .redis_server import RedisServer, redis_server, unique_prefix  # noqa: F401  (fixture)


async def test_anyone_prefers_the_same_process_until_someone_has_waited(redis_server: RedisServer) -> None:  # noqa: F811
    keys = Keys(unique_prefix())
    client = await connect(redis_server.url)
    one = RedisMatchmaker(client, ProcessId("node", "1"), keys=keys, rng=random.Random(1))
    two = RedisMatchmaker(client, ProcessId("node", "2"), keys=keys, rng=random.Random(2))
    now = 10.0
    for round_ in range(12):  # each time both are drawn; the one served here is taken, whatever the order
        far, near = f"far{round_}", f"near{round_}"
        assert await two.start(far, now) == [Waiting(far)]
        assert await one.start(near, now) == [Paired(near, far, (), "any")]
        await one.next(near, now)  # both wait again, kept apart by the rematch cooldown
        events = await one.start(f"me{round_}", now + 0.1)
        assert events == [Paired(f"me{round_}", f"near{round_}", (), "any")]
        assert await two.start(f"other{round_}", now + 0.2) == [Paired(f"other{round_}", f"far{round_}", (), "any")]
        now += 1.0
    # Someone who has waited LOCAL_PATIENCE stands with the searcher's own: taken before a
    # newcomer served by a third process.
    three = RedisMatchmaker(client, ProcessId("node", "3"), keys=keys, rng=random.Random(3))
    for round_ in range(8):
        patient, fresh = f"patient{round_}", f"fresh{round_}"
        assert await two.start(patient, now - 0.1) == [Waiting(patient)]
        assert await three.start(fresh, now - 0.1) == [Paired(fresh, patient, (), "any")]
        await three.next(fresh, now)  # the patient one waits on, since `now`
        await three.stop(fresh, now)
        assert await three.start(fresh, now + LOCAL_PATIENCE) == [Waiting(fresh)]  # kept apart by the cooldown
        assert await one.start(f"late{round_}", now + LOCAL_PATIENCE + 0.1) == [
            Paired(f"late{round_}", patient, (), "any")]
        assert await three.stop(fresh, now + LOCAL_PATIENCE + 0.2) is not None
        now += 3.0
    # Nobody served here: someone served elsewhere at once (nobody waits for a local partner).
    assert await two.start("lonely", now) == [Waiting("lonely")]
    assert await one.start("newcomer", now + 0.01) == [Paired("newcomer", "lonely", (), "any")]
    await client.aclose()
