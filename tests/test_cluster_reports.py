"""Reports and automatic detection across processes sharing one pool (two servers, one Redis, each
node with its own moderation database): a report of a partner served by the other process is stored
where the reporter's process keeps reports, with the reported person's identity and the pictures
their process took of them; with that process gone, the report is still stored, without pictures; a
publisher flagged by the process serving them is hidden from their partner served elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from sfu.config import Config
from sfu.headless.client import HeadlessClient
from sfu.headless.stamp import read as read_stamp
from sfu.moderation.evidence_image import decode_jpeg

from .moderation_helpers import ADMIN_TOKEN, device_of, settings_for
from .ops_helpers import Running, running
from .redis_server import RedisServer, own_redis_server  # noqa: F401  (fixture)
from .routing import pair_up

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SECRET = "one device secret for every node of the pool"


def node_config(redis: RedisServer, tmp_path: Path, node: str, **moderation) -> Config:
    settings = settings_for(tmp_path / node, device_secret=SECRET, **moderation)
    return Config(host="127.0.0.1", port=0, online_interval=0.2, redis_url=redis.url, node_id=node,
                  moderation=settings)


@contextlib.asynccontextmanager
async def clients(*made: HeadlessClient) -> AsyncIterator[None]:
    try:
        await asyncio.gather(*(c.connect() for c in made))
        yield
    finally:
        await asyncio.gather(*(c.close() for c in made), return_exceptions=True)


async def get_json(http: aiohttp.ClientSession, path: str) -> dict:
    async with http.get(path, headers=AUTH) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def until(probe, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        found = await probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        await asyncio.sleep(0.1)


async def knows_identity(node: Running, reporter: HeadlessClient, reported: HeadlessClient) -> bool:
    assert node.server.safety is not None
    partner = node.server.safety.recent.reportable(reporter.id, time.monotonic())
    return partner is not None and partner.session == reported.id and partner.identity is not None


async def test_a_report_of_a_partner_served_elsewhere_carries_their_identity_and_pictures(
        own_redis_server: RedisServer, tmp_path: Path) -> None:  # noqa: F811
    async with running(node_config(own_redis_server, tmp_path, "a")) as node_a, \
            running(node_config(own_redis_server, tmp_path, "b")) as node_b:
        reporter, reported = HeadlessClient(node_a.url, 301), HeadlessClient(node_b.url, 302)
        async with clients(reporter, reported), aiohttp.ClientSession(base_url=node_a.url) as api:
            await pair_up(reporter, reported)
            await until(lambda: knows_identity(node_a, reporter, reported), "identity of the partner")

            await reporter.report("nudity", "across the pool")
            report_id = (await reporter.expect("reported"))["report_id"]
            await reporter.expect("waiting")  # moved on, as after a local report
            await reported.expect("partner_left")

            async def with_evidence() -> dict | None:
                detail = await get_json(api, f"/api/mod/reports/{report_id}")
                return detail if len(detail["evidence"]) == node_b.server.moderation.settings.evidence_frames \
                    else None

            detail = await until(with_evidence, "evidence pictures")
            assert detail["reason"] == "nudity" and detail["note"] == "across the pool"
            assert detail["reporter"]["device"] == device_of(reporter.device_token)
            assert detail["reported"]["device"] == device_of(reported.device_token)
            assert detail["reported"]["address_hash"] is None  # loopback: never banned by address
            listed = await get_json(api, "/api/mod/reports?status=open")
            assert [r["id"] for r in listed["reports"]] == [report_id]
            frames = []
            for item in detail["evidence"]:
                async with api.get(item["url"], headers=AUTH) as response:
                    assert response.status == 200 and response.content_type == "image/jpeg"
                    found = read_stamp(decode_jpeg(await response.read()))
                assert found is not None and found.sender == 302, "the pictures are the reported person's video"
                frames.append(found.frame)
            assert frames == sorted(set(frames)), f"distinct pictures, oldest first: {frames}"
            # Stored where the reporter's node keeps reports; the other node's database has none.
            assert node_b.server.moderation is not None
            assert await node_b.server.moderation.list_reports(status=None) == []


async def test_the_reported_persons_process_gone_the_report_is_stored_without_pictures(
        own_redis_server: RedisServer, tmp_path: Path) -> None:  # noqa: F811
    async with running(node_config(own_redis_server, tmp_path, "a")) as node_a, contextlib.AsyncExitStack() as stack:
        reporter = HeadlessClient(node_a.url, 311)
        stack.push_async_callback(reporter.close)
        await reporter.connect()
        async with contextlib.AsyncExitStack() as node_b_stack:
            node_b = await node_b_stack.enter_async_context(running(node_config(own_redis_server, tmp_path, "b")))
            reported = HeadlessClient(node_b.url, 312)
            node_b_stack.push_async_callback(reported.close)
            await reported.connect()
            await pair_up(reporter, reported)
            await until(lambda: knows_identity(node_a, reporter, reported), "identity of the partner")
            reported_device = device_of(reported.device_token)
        # node b stopped (the reported person left with it) before anyone asked it for pictures
        await reporter.expect("partner_left")
        await reporter.report("harassment")  # within the report window after the partner left
        report_id = (await reporter.expect("reported"))["report_id"]
        safety, service = node_a.server.safety, node_a.server.moderation
        assert safety is not None and service is not None
        await safety.settle(timeout=30)  # whatever evidence was to come has come (none)
        detail = await service.report_detail(report_id)
        assert detail is not None
        assert detail.report.reported.device == reported_device and detail.report.reason == "harassment"
        assert detail.evidence == []
        assert not reporter.socket_closed


async def test_a_publisher_flagged_where_served_is_hidden_from_their_partner_elsewhere(
        own_redis_server: RedisServer, tmp_path: Path) -> None:  # noqa: F811
    screening = {"moderation_classifier": "marker", "moderation_interval": 1.0, "moderation_queue": 2}
    async with running(node_config(own_redis_server, tmp_path, "a", **screening)) as node_a, \
            running(node_config(own_redis_server, tmp_path, "b", **screening)) as node_b:
        watcher, publisher = HeadlessClient(node_a.url, 321), HeadlessClient(node_b.url, 322)
        async with clients(watcher, publisher):
            await pair_up(watcher, publisher)  # pre-screened where each is served, then shown
            publisher.show_marker()
            told = await publisher.expect("moderation", timeout=15)
            assert (told["action"], told["reason"]) == ("video_hidden", "nudity")
            note = await watcher.expect("moderation", timeout=10)
            assert (note["action"], note["reason"]) == ("partner_hidden", "nudity")
            hidden_at = time.monotonic()
            # From shortly after, the watcher gets the placeholder, never the flagged video.
            await until(lambda: _placeholder_since(watcher, hidden_at), "placeholder")
            settled = time.monotonic() + 0.5
            await asyncio.sleep(2.0)
            late = [f for f in watcher.frames_since(settled) if f.stamp is not None and f.stamp.sender == 322]
            assert not late, "the watcher kept receiving the flagged publisher's video"
            # The automatic report is stored by the publisher's process (it has their identity).
            service = node_b.server.moderation
            assert service is not None
            reports = await until(lambda: service.list_reports(source="automatic"), "automatic report")
            assert reports[0].reported.device == device_of(publisher.device_token)
            assert node_a.server.moderation is not None
            assert await node_a.server.moderation.list_reports(source="automatic", status=None) == []


async def _placeholder_since(client: HeadlessClient, at: float) -> bool:
    return any(f.stamp is None for f in client.frames_since(at))
