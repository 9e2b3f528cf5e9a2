"""Integration: real aiortc peers over loopback, paired at random by an in-process server."""

from __future__ import annotations

import asyncio
import time

from sfu.headless.client import HeadlessClient

from .routing import assert_routing


async def connect_all(make_client, ids) -> list[HeadlessClient]:
    return list(await asyncio.gather(*(make_client(i) for i in ids)))


def ids_of(*clients: HeadlessClient) -> dict[str, int]:
    return {c.id: c.sender_id for c in clients}


async def test_two_clients_see_each_other_and_hear_audio(make_client) -> None:
    a, b = await connect_all(make_client, (1, 2))
    t0 = time.monotonic()
    await a.start()
    assert (await a.expect("waiting", "paired"))["type"] == "waiting"
    await b.start()
    assert (await b.expect("paired"))["partner"] == a.id
    assert (await a.expect("paired"))["partner"] == b.id
    fa = await a.wait_frame_from(2)
    fb = await b.wait_frame_from(1)
    print(f"start -> first partner frame: {max(fa.at, fb.at) - t0:.3f} s")
    await asyncio.sleep(1.0)
    assert sum(1 for f in a.received.frames if f.stamp and f.stamp.sender == 2) >= 5
    assert a.received.audio_loud_frames > 10 and b.received.audio_loud_frames > 10
    for c in (a, b):
        assert_routing(c, ids_of(a, b))


async def test_three_clients_next_and_routing(make_client, server) -> None:
    a, b, c = await connect_all(make_client, (1, 2, 3))
    senders = ids_of(a, b, c)
    await a.start()
    await a.expect("waiting")
    await b.start()
    await b.expect("paired")
    await a.expect("paired")
    await c.start()
    await c.expect("waiting")
    await a.wait_frame_from(2)
    await b.wait_frame_from(1)
    # the waiting client sees only the neutral placeholder
    await c.wait_frames(2)
    assert all(f.stamp is None for f in c.received.frames)

    # a presses Next: b is re-queued first and meets c; a waits (not straight back to b)
    t_next = time.monotonic()
    await a.next()
    assert (await b.expect("partner_left", "paired"))["type"] == "partner_left"
    assert (await b.expect("paired"))["partner"] == c.id
    assert (await c.expect("paired"))["partner"] == b.id
    assert (await a.expect("waiting", "paired"))["type"] == "waiting"
    fb = await b.wait_frame_from(3, since=t_next)
    fc = await c.wait_frame_from(2, since=t_next)
    print(f"next -> first new-partner frame: {max(fb.at, fc.at) - t_next:.3f} s")
    await asyncio.sleep(1.0)
    # after the new partner's first frame nothing of the old one arrives
    assert not [f for f in b.frames_since(fb.at) if f.stamp and f.stamp.sender == 1]
    # a is unpaired: after the switch it gets no one's picture (only the placeholder)
    await a.wait_frames(len(a.received.frames) + 1)
    late = [f for f in a.frames_since(t_next + 0.5) if f.stamp is not None]
    assert not late, f"unpaired client still received {late[0].stamp}"
    for client in (a, b, c):
        assert_routing(client, senders)

    status = server.server.status()["participants"]
    assert status == {"connected": 3, "waiting": 1, "paired": 2}


async def test_chat_reaches_only_the_partner(make_client) -> None:
    a, b, c = await connect_all(make_client, (1, 2, 3))
    await a.start()
    await b.start()
    await a.expect("paired")
    await b.expect("paired")
    await c.start()
    await c.expect("waiting")
    await a.chat("hello <b>b</b>")
    assert (await b.expect("chat"))["text"] == "hello <b>b</b>"
    await b.chat("hi a")
    assert (await a.expect("chat"))["text"] == "hi a"
    await c.chat("anyone?")
    error = await c.expect("error")
    assert error["code"] == "not_paired"
    await asyncio.sleep(0.3)
    assert not c.messages("chat")
    assert len(a.messages("chat")) == 1 and len(b.messages("chat")) == 1


async def test_disconnect_frees_and_notifies_partner(make_client, server) -> None:
    a, b, c = await connect_all(make_client, (1, 2, 3))
    await a.start()
    await b.start()
    await a.expect("paired")
    await b.expect("paired")
    await b.wait_frame_from(1)
    await a.close()
    await b.expect("partner_left")
    assert (await b.expect("waiting", "paired"))["type"] == "waiting"
    await c.start()
    assert (await c.expect("paired"))["partner"] == b.id
    t = time.monotonic()
    await b.wait_frame_from(3, since=t - 1)
    for _ in range(50):
        if server.server.status()["participants"]["connected"] == 2:
            break
        await asyncio.sleep(0.1)
    assert server.server.status()["participants"] == {"connected": 2, "waiting": 0, "paired": 2}


async def test_stop_goes_idle_and_frees_partner(make_client) -> None:
    a, b = await connect_all(make_client, (1, 2))
    await a.start()
    await b.start()
    await a.expect("paired")
    await b.expect("paired")
    await a.stop()
    await a.expect("idle")
    await b.expect("partner_left")
    await b.expect("waiting")
    await a.start()
    assert (await a.expect("paired"))["partner"] == b.id  # stop is not next: no cooldown


async def test_online_count_is_broadcast(make_client) -> None:
    a = await make_client(1, connect=False)
    await a.open_socket()
    assert (await a.expect("online"))["count"] == 1
    b = await make_client(2, connect=False)
    await b.open_socket()
    assert (await a.expect("online"))["count"] == 2
    await b.close()
    assert (await a.expect("online"))["count"] == 1


async def test_rematch_after_cooldown_when_alone(make_client, server) -> None:
    server.server.matchmaker.rematch_cooldown = 1.0
    a, b = await connect_all(make_client, (1, 2))
    await a.start()
    await b.start()
    await a.expect("paired")
    await b.expect("paired")
    await a.next()
    await a.expect("waiting")
    # only the two of them: after the cooldown they meet again
    assert (await a.expect("paired", timeout=10))["partner"] == b.id
