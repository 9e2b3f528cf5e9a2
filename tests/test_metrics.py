"""/metrics after a real pairing: the listed metrics exist with sane values; servers never clash."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sfu.config import Config
from sfu.server import Server

from .routing import pair_up


@pytest.fixture
def config() -> Config:
    return Config(host="127.0.0.1", port=0, online_interval=0.2, stats_interval=0.3)


async def scrape(url: str) -> dict[tuple[str, tuple], float]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            text = await response.text()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), float("nan"))


async def test_metrics_after_a_pairing(server, make_client) -> None:
    a = await make_client(1)
    b = await make_client(2)
    await pair_up(a, b)
    await a.send("not json")
    await a.expect("error")
    await asyncio.sleep(1.0)  # at least two media samples

    m = await scrape(server.url)
    assert value(m, "sfu_participants_connected") == 2
    assert value(m, "sfu_participants_paired") == 2
    assert value(m, "sfu_participants_waiting") == 0
    assert value(m, "sfu_draining") == 0
    assert value(m, "sfu_connections_total") == 2
    mode = server.server.forwarding.name
    assert value(m, "sfu_pairs_total", forwarding=mode) == 1
    # aiortc clients offer VP8 first: both video directions are forwarded as packets in auto
    expected_video_mode = {"transcode": "transcode", "passthrough": "passthrough"}.get(mode, "packet")
    assert value(m, "sfu_forwarding_directions", kind="video", mode=expected_video_mode) == 2
    assert value(m, "sfu_nexts_total") == 0
    assert value(m, "sfu_time_to_pair_seconds_count") == 2
    assert 0 <= value(m, "sfu_time_to_pair_seconds_sum") < 60
    assert value(m, "sfu_time_to_first_frame_seconds_count") == 2
    assert 0 < value(m, "sfu_time_to_first_frame_seconds_sum") < 60
    assert value(m, "sfu_forwarded_bytes_total", kind="video") > 10_000
    assert value(m, "sfu_forwarded_packets_total", kind="video") > 10
    assert value(m, "sfu_forwarded_bytes_total", kind="audio") > 0
    assert value(m, "sfu_errors_total", code="bad_json") == 1
    assert value(m, "sfu_event_loop_lag_seconds_count") > 0
    assert value(m, "sfu_event_loop_lag_last_seconds") >= 0

    # Next: counted, and the new pair's wait is measured too.
    c = await make_client(3)
    await c.start()
    await c.expect("waiting")
    await a.next()
    await a.expect("paired", "waiting")
    for _ in range(100):
        m = await scrape(server.url)
        if value(m, "sfu_pairs_total", forwarding=mode) == 2:
            break
        await asyncio.sleep(0.1)
    assert value(m, "sfu_nexts_total") == 1
    assert value(m, "sfu_pairs_total", forwarding=mode) == 2
    assert value(m, "sfu_time_to_pair_seconds_count") == 4
    assert value(m, "sfu_participants_connected") == 3
    assert value(m, "sfu_participants_paired") + value(m, "sfu_participants_waiting") == 3
    before = value(m, "sfu_forwarded_bytes_total", kind="video")
    await asyncio.sleep(1.0)
    m = await scrape(server.url)
    assert value(m, "sfu_forwarded_bytes_total", kind="video") > before  # counters only grow


async def test_two_servers_in_one_process_keep_their_own_registry() -> None:
    one, two = Server(Config()), Server(Config())
    one.metrics.on_next()
    assert b"sfu_nexts_total 1.0" in one.metrics.render()
    assert b"sfu_nexts_total 0.0" in two.metrics.render()


async def test_metrics_can_be_turned_off() -> None:
    from .ops_helpers import running

    async with running(Config(host="127.0.0.1", port=0, metrics=False)) as srv:
        async with aiohttp.ClientSession() as http:
            async with http.get(srv.url + "/metrics") as response:
                assert response.status == 404
