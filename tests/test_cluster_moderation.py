"""Moderation across processes sharing one pool: a ban made by one process disconnects the person
wherever they are served; a moderation note for a partner served elsewhere reaches them."""

from __future__ import annotations

import dataclasses
import time

from sfu.config import Config
from sfu.headless.client import HeadlessClient
from sfu.moderation.records import Ban

from .ops_helpers import running
from .redis_server import RedisServer, own_redis_server  # noqa: F401  (fixture)


async def test_a_ban_made_on_one_node_disconnects_the_person_on_another(own_redis_server: RedisServer) -> None:  # noqa: F811
    base = Config(host="127.0.0.1", port=0, online_interval=0.2, redis_url=own_redis_server.url)
    async with running(dataclasses.replace(base, node_id="a")) as node_a, \
            running(dataclasses.replace(base, node_id="b")) as node_b:
        a, b = HeadlessClient(node_a.url, 1), HeadlessClient(node_b.url, 2)
        try:
            await a.connect()
            await b.connect()
            await a.start()
            await b.start()
            assert (await a.expect("paired"))["partner"] == b.id

            # automatic detection on node a hid b's video: b (served by node b) is told
            node_a.server._tell_moderation(b.id, "video_hidden", "nudity")
            note = await b.expect("moderation")
            assert (note["action"], note.get("reason")) == ("video_hidden", "nudity")

            assert node_a.server.moderation is not None and node_b.server.safety is not None
            device = node_b.server.safety.visitors[b.id].identity.device
            now = time.time()
            ban = Ban(id=1, device=device, address_hash=None, reason="nudity", created_at=now, until=now + 3600,
                      created_by="moderator")
            await node_a.server.moderation.notify("ban", ban)  # as when a moderator bans on node a
            error = await b.expect("error")
            assert error["code"] == "banned" and error["reason"] == "nudity"
            await b.expect("_closed")
            await a.expect("partner_left")  # b's process took b out of the pool
            assert not a.socket_closed
        finally:
            await a.close()
            await b.close()
