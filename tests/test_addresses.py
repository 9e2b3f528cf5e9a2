"""What the server announces: the public address in place of the private one, and media ports
within the configured range (real aiortc peers over loopback)."""

from __future__ import annotations

import random
import socket

import pytest

from sfu.config import Config
from sfu.media.addresses import announce, candidate_addresses

ANSWER = "\r\n".join(
    [
        "v=0",
        "m=video 40002 UDP/TLS/RTP/SAVPF 97",
        "c=IN IP4 10.0.0.5",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=candidate:1 1 udp 2130706431 10.0.0.5 40002 typ host",
        "a=candidate:2 1 udp 2130706431 fd00::5 40003 typ host",
        "a=candidate:3 1 udp 1694498815 198.51.100.9 40002 typ srflx raddr 10.0.0.5 rport 40002",
        "a=end-of-candidates",
        "",
    ]
)


def test_announce_replaces_the_private_address_everywhere() -> None:
    out = announce(ANSWER, "203.0.113.7")
    assert "10.0.0.5" not in out
    assert "c=IN IP4 203.0.113.7" in out
    assert "a=candidate:1 1 udp 2130706431 203.0.113.7 40002 typ host" in out
    assert "fd00::5 40003 typ host" in out  # another family: left alone
    assert "198.51.100.9 40002 typ srflx raddr 203.0.113.7 rport 40002" in out
    assert out.count("\r\n") == ANSWER.count("\r\n")


def test_announce_without_public_ip_changes_nothing() -> None:
    assert announce(ANSWER, None) == ANSWER


def test_candidate_addresses_lists_what_a_receiver_learns() -> None:
    assert set(candidate_addresses(ANSWER)) == {"10.0.0.5", "fd00::5", "198.51.100.9"}


def _free_range(size: int) -> tuple[int, int]:
    """A range below the ephemeral ports whose ports are free now on 127.0.0.1."""
    for _ in range(50):
        low = random.randrange(20000, 30000)
        try:
            socks = []
            for port in range(low, low + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return low, low + size - 1
    raise RuntimeError("no free port range")


LOW, HIGH = _free_range(2)


@pytest.fixture
def config() -> Config:
    return Config(host="127.0.0.1", port=0, online_interval=0.2, port_range=f"{LOW}-{HIGH}")


def _ports(answer: str) -> list[int]:
    return [int(line.split()[5]) for line in answer.splitlines() if line.startswith("a=candidate:")]


async def test_media_ports_stay_in_range_and_the_range_is_a_limit(server, make_client) -> None:
    one, two = await make_client(1), await make_client(2)
    await one.start()
    await two.start()
    await one.wait_frame_from(2)
    await two.wait_frame_from(1)
    ports = {port for client in (one, two) for port in _ports(client.messages("answer")[0]["sdp"])}
    assert ports == {LOW, HIGH}

    third = await make_client(3, connect=False)
    with pytest.raises(Exception):
        await third.connect(timeout=3)
    assert third.messages("error")[0]["code"] == "server_full"
    # The two already connected are unaffected.
    since = one.received.frames[-1].at
    await one.wait_frame_from(2, since=since)


def test_behind_a_proxy_with_a_public_ip_media_leaves_loopback() -> None:
    """``--host 127.0.0.1`` behind a reverse proxy must not confine media to loopback."""
    assert Config(host="127.0.0.1").host_addresses() == ["127.0.0.1"]
    assert Config(host="127.0.0.1", public_ip="203.0.113.7").host_addresses() == []
    assert Config(host="127.0.0.1", public_ip="203.0.113.7", media_addresses=["10.0.0.5"]).host_addresses() == ["10.0.0.5"]


def test_bind_in_range_skips_taken_ports_and_says_when_none_is_left() -> None:
    from sfu.media.aiortc_hooks.ice import PortRangeExhausted, bind_udp_in_range

    low, high = _free_range(3)
    taken = []
    try:
        for _ in range(3):
            taken.append(bind_udp_in_range("127.0.0.1", (low, high)))
        assert sorted(s.getsockname()[1] for s in taken) == [low, low + 1, high]
        with pytest.raises(PortRangeExhausted):
            bind_udp_in_range("127.0.0.1", (low, high))
    finally:
        for s in taken:
            s.close()
