"""Checks shared by the routing tests: whose picture did each client see, and when."""

from __future__ import annotations

from sfu.headless.client import HeadlessClient


def partner_history(client: HeadlessClient, senders_by_id: dict[str, int]) -> list[int]:
    """Sender ids of the client's partners, in the order the server announced them."""
    return [senders_by_id[m["partner"]] for m in client.messages("paired")]


def assert_routing(client: HeadlessClient, senders_by_id: dict[str, int]) -> None:
    """Every stamped frame came from a partner the client had, and never from an earlier partner
    once a later partner's frames had begun; never the client's own picture."""
    partners = partner_history(client, senders_by_id)
    current = -1  # index into partners of the newest partner seen in frames
    for frame in client.received.frames:
        if frame.stamp is None:
            continue  # the neutral placeholder
        sender = frame.stamp.sender
        assert sender != client.sender_id, f"client {client.sender_id} received its own picture"
        assert sender in partners, (
            f"client {client.sender_id} received {sender}'s picture; its partners were {partners}"
        )
        index = max(i for i, p in enumerate(partners) if p == sender)
        assert index >= current, (
            f"client {client.sender_id} received {sender} after a later partner's frames"
        )
        current = index


async def pair_up(a: HeadlessClient, b: HeadlessClient, timeout: float = 30.0) -> None:
    """Start two connected clients (nobody else waiting), and wait until each sees the other."""
    await a.start()
    await b.start()
    assert (await a.expect("paired", timeout=timeout))["partner"] == b.id
    assert (await b.expect("paired", timeout=timeout))["partner"] == a.id
    await a.wait_frame_from(b.sender_id, timeout=timeout)
    await b.wait_frame_from(a.sender_id, timeout=timeout)
