"""Bad input gets a clear error and loses nothing: a paired pair streams alongside every case."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest

from sfu.headless.client import HeadlessClient

from .routing import assert_routing, pair_up


@pytest.fixture
async def streaming_pair(make_client):
    a = await make_client(101)
    b = await make_client(102)
    await pair_up(a, b)
    return a, b


async def assert_still_streaming(a: HeadlessClient, b: HeadlessClient) -> None:
    since = time.monotonic()
    await a.wait_frame_from(102, since=since)
    await b.wait_frame_from(101, since=since)
    assert not a.messages("partner_left") and not b.messages("partner_left")
    ids = {a.id: 101, b.id: 102}
    assert_routing(a, ids)
    assert_routing(b, ids)


async def raw(make_client, sender_id: int) -> HeadlessClient:
    client = await make_client(sender_id, connect=False)
    await client.open_socket()
    return client


async def error_for(client: HeadlessClient, message) -> dict:
    await client.send(message)
    reply = await client.expect("error", "_closed")
    return reply


@pytest.mark.parametrize(
    "message, code",
    [
        ("{not json", "bad_json"),
        ("[1, 2, 3]", "bad_json"),
        ('"start"', "bad_json"),
        ("{}", "bad_message"),
        ('{"type": 7}', "bad_message"),
        ('{"type": "offer"}', "bad_message"),
        ('{"type": "offer", "sdp": 12}', "bad_message"),
        ('{"type": "chat"}', "bad_message"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "start"}', "offer_required"),
        ('{"type": "next"}', "offer_required"),
        ('{"type": "chat", "text": "hi"}', "not_paired"),
        ('{"type": "chat", "text": "   "}', "chat_empty"),
        (json.dumps({"type": "chat", "text": "x" * 1001}), "chat_too_long"),
        (json.dumps({"type": "chat", "text": "x" * 70_000}), "message_too_large"),
        ("[" * 100_000 + "]" * 100_000, "message_too_large"),
    ],
)
async def test_refused_messages_keep_the_socket_open(make_client, streaming_pair, server, message, code) -> None:
    client = await raw(make_client, 1)
    reply = await error_for(client, message)
    assert reply == {"type": "error", "code": code, "message": reply["message"]}
    assert reply["message"]
    # the socket is still usable
    reply = await error_for(client, '{"type": "dance"}')
    assert reply["code"] == "unknown_type"
    await assert_still_streaming(*streaming_pair)


async def test_binary_frame_is_refused(make_client, streaming_pair) -> None:
    client = await raw(make_client, 1)
    await client.send_bytes(b"\x00\x01binary")
    assert (await client.expect("error"))["code"] == "binary_not_supported"
    await assert_still_streaming(*streaming_pair)


async def test_frame_over_hard_limit_closes_only_that_socket(make_client, streaming_pair, server) -> None:
    client = await raw(make_client, 1)
    await client.send("x" * (2 * 1024 * 1024))
    closed = await client.expect("_closed")
    assert closed["code"] == 1009
    await assert_still_streaming(*streaming_pair)
    assert len(server.server.sessions) == 2


async def test_unparsable_sdp_gets_bad_sdp_and_close(make_client, streaming_pair, server) -> None:
    client = await raw(make_client, 1)
    await client.send({"type": "offer", "sdp": "this is not sdp"})
    assert (await client.expect("error"))["code"] == "bad_sdp"
    await client.expect("_closed")
    await assert_still_streaming(*streaming_pair)
    assert len(server.server.sessions) == 2


async def test_unknown_codecs_are_refused_or_rejected(make_client, streaming_pair, server) -> None:
    """An offer whose video codecs the server does not know: an error or a rejected m-line."""
    donor = await make_client(1, connect=False)
    await donor.open_socket()
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    pc.addTransceiver("video")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = re.sub(r"a=rtpmap:(\d+) (VP8|H264|rtx)/", r"a=rtpmap:\1 FOO\2/", pc.localDescription.sdp)
    await pc.close()
    await donor.send({"type": "offer", "sdp": sdp})
    reply = await donor.expect("answer", "error")
    if reply["type"] == "answer":
        assert "m=video 0 " in reply["sdp"] or "a=inactive" in reply["sdp"]
    else:
        assert reply["code"] == "bad_sdp"
    await assert_still_streaming(*streaming_pair)


async def test_second_offer_is_refused(make_client, streaming_pair) -> None:
    client = await make_client(1)
    await client.send({"type": "offer", "sdp": client.pc.localDescription.sdp})
    assert (await client.expect("error"))["code"] == "already_negotiated"
    await client.start()
    assert (await client.expect("waiting"))["type"] == "waiting"
    await assert_still_streaming(*streaming_pair)


async def test_client_vanishing_at_every_step_is_cleaned_up(make_client, streaming_pair, server) -> None:
    srv = server.server
    # 1. before its offer
    early = await raw(make_client, 1)
    await early.close()
    # 2. mid-ICE: an offer without candidates never connects; the client then disappears
    stuck = await make_client(2, connect=False)
    await stuck.open_socket()
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    pc.addTransceiver("audio")
    pc.addTransceiver("video")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = "".join(line + "\r\n" for line in pc.localDescription.sdp.splitlines() if not line.startswith("a=candidate"))
    await pc.close()
    await stuck.send({"type": "offer", "sdp": sdp})
    await stuck.expect("answer")
    stuck_media = srv.sessions[stuck.id].media
    await stuck.start()
    await stuck.expect("waiting")
    await stuck.close()
    # 3. while paired: a second pair, one of whom vanishes
    c = await make_client(3)
    d = await make_client(4)
    await pair_up(c, d)
    c_media = srv.sessions[c.id].media
    await c.close()
    await d.expect("partner_left")
    await d.expect("waiting")

    for _ in range(100):
        closed = stuck_media.pc.connectionState == c_media.pc.connectionState == "closed"
        if len(srv.sessions) == 3 and closed:
            break
        await asyncio.sleep(0.05)
    assert set(srv.sessions) == {streaming_pair[0].id, streaming_pair[1].id, d.id}
    assert stuck_media.pc.connectionState == "closed"
    assert c_media.pc.connectionState == "closed"
    assert srv.matchmaker.waiting_count == 1 and srv.matchmaker.paired_count == 2
    await assert_still_streaming(*streaming_pair)
