"""Interests and languages end to end, with real aiortc clients over loopback: people sharing an
interest meet first and are told what they share; refused preferences get clear errors, keep the
connection, and disturb nobody (a paired pair keeps streaming alongside)."""

from __future__ import annotations

import json

import aiohttp
import pytest

from sfu.config import Config
from sfu.headless.client import HeadlessClient

from .routing import assert_routing, pair_up
from .test_bad_input import assert_still_streaming


@pytest.fixture
def config() -> Config:
    # Waits far longer than any test: nobody's search widens while a test runs.
    return Config(host="127.0.0.1", port=0, online_interval=0.2, interest_wait=120.0, language_wait=120.0)


@pytest.fixture
async def streaming_pair(make_client):
    a = await make_client(101)
    b = await make_client(102)
    await pair_up(a, b)
    return a, b


async def waiting(client: HeadlessClient, **preferences) -> None:
    await client.start(**preferences)
    assert (await client.expect("waiting", "paired"))["type"] == "waiting"


async def test_common_interest_pairs_over_someone_without(make_client, server) -> None:
    plain = await make_client(1)
    ana = await make_client(2)
    bea = await make_client(3)
    await waiting(plain)
    await waiting(ana, interests=["Chess", "  JAZZ  "])
    # bea shares jazz with ana; plain, who has no interests, waited longest and is passed over
    await bea.start(interests=["jazz", "Go"], languages=["pt-BR"])
    to_bea = await bea.expect("paired")
    to_ana = await ana.expect("paired")
    assert to_bea == {"type": "paired", "partner": ana.id, "common": ["jazz"]}
    assert to_ana == {"type": "paired", "partner": bea.id, "common": ["jazz"]}
    await ana.wait_frame_from(3)
    await bea.wait_frame_from(2)
    ids = {plain.id: 1, ana.id: 2, bea.id: 3}
    assert_routing(ana, ids)
    assert_routing(bea, ids)
    assert not plain.messages("paired")
    assert server.server.matchmaker.waiting_count == 1

    status = await http_json(server.url + "/healthz")
    assert status["pairing"]["by_basis"] == {"interest": 1, "language": 0, "any": 0}
    assert status["pairing"]["time_to_pair_seconds"]["p50"] > 0
    metrics = await http_text(server.url + "/metrics")
    assert 'sfu_pairs_by_basis_total{basis="interest"} 1.0' in metrics
    assert 'sfu_pairs_by_basis_total{basis="any"} 0.0' in metrics

    # Next with no interests: ana now meets plain, and nothing is shared
    await ana.next(interests=[])
    assert (await plain.expect("paired")) == {"type": "paired", "partner": ana.id, "common": []}
    assert (await bea.expect("partner_left"))["type"] == "partner_left"


async def test_a_shared_language_is_preferred(make_client, server) -> None:
    german = await make_client(1)
    french = await make_client(2)
    await waiting(german, languages=["de-AT"])
    await waiting(french, languages=["fr", "en"])
    quebec = await make_client(3)
    await quebec.start(languages=["fr-CA"])
    assert (await quebec.expect("paired")) == {"type": "paired", "partner": french.id, "common": []}
    assert (await french.expect("paired"))["partner"] == quebec.id
    assert not german.messages("paired")
    assert server.server.matchmaker.pairs_by_basis["language"] == 1
    # a German speaker meets german, whoever waited longer
    vienna = await make_client(4)
    await vienna.start(languages=["de"])
    assert (await vienna.expect("paired")) == {"type": "paired", "partner": german.id, "common": []}


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"interests": [f"tag{i}" for i in range(11)]}, "too_many_interests"),
        ({"interests": ["x" * 33]}, "interest_too_long"),
        ({"interests": ["y" * 5000]}, "interest_too_long"),
        ({"interests": ["chess", 7]}, "bad_interests"),
        ({"interests": [None]}, "bad_interests"),
        ({"interests": {"chess": True}}, "bad_interests"),
        ({"interests": "chess"}, "bad_interests"),
        ({"languages": ["en", "<script>"]}, "bad_languages"),
        ({"languages": [["en"]]}, "bad_languages"),
        ({"languages": ["en"] * 33}, "too_many_languages"),
        ({"strict": "yes"}, "bad_strict"),
    ],
)
async def test_bad_preferences_get_clear_errors_and_disturb_nobody(make_client, streaming_pair, server, fields, code) -> None:
    client = await make_client(1)
    for kind in ("start", "next"):
        await client.send({"type": kind, **fields})
        reply = await client.expect("error", "waiting", "paired", "_closed")
        assert reply["type"] == "error" and reply["code"] == code, reply
        assert reply["message"]
    # nothing happened: not queued, the socket still works, and good preferences are accepted
    assert server.server.matchmaker.waiting_count == 0
    await waiting(client, interests=["chess"])
    await assert_still_streaming(*streaming_pair)
    assert len(server.server.sessions) == 3


async def test_preferences_normalised_like_the_page_shows_them(make_client) -> None:
    a = await make_client(1)
    b = await make_client(2)
    await waiting(a, interests=["Straße", "ＮＩＮＴＥＮＤＯ", "a\u202eb"])
    await b.start(interests=["STRASSE", "nintendo", "ab"], strict=True)
    assert (await b.expect("paired"))["common"] == ["ab", "nintendo", "strasse"]


async def http_json(url: str) -> dict:
    return json.loads(await http_text(url))


async def http_text(url: str) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as response:
            assert response.status == 200
            return await response.text()

