"""Unit tests: JSON log lines, address tags, token buckets, per-address accounting, SDP guard."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from sfu import logs
from sfu.config import Config
from sfu.limits import AddressLimits, SessionLimits, TokenBucket, client_address
from sfu.logs import AddressTagger, JsonFormatter, TextFormatter
from sfu.media.sdp_guard import BadOffer, check_offer


def record(msg: str, exc: bool = False, **extra) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom\nsecond line")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    rec = logging.LogRecord("sfu.server", logging.INFO, __file__, 1, msg, (), exc_info)
    rec.__dict__.update(extra)
    return rec


def test_json_log_line_is_one_object_per_line_with_fields() -> None:
    line = JsonFormatter().format(record("paired a with b", exc=True, event="paired", session="a", partner="b"))
    assert "\n" not in line
    data = json.loads(line)
    assert data["msg"] == "paired a with b" and data["event"] == "paired" and data["partner"] == "b"
    assert data["level"] == "info" and data["logger"] == "sfu.server" and data["ts"].endswith("Z")
    assert "ValueError: boom" in data["exc"]


def test_text_log_line_appends_event_fields() -> None:
    line = TextFormatter().format(record("session x connected", event="connected", session="x", client="ip-1"))
    assert line.endswith("session x connected session=x client=ip-1")


def test_log_lines_go_to_the_current_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    """An embedding program (a test runner) may swap ``sys.stderr`` after the server set up its
    logging, and close the old one: lines go to the current one, never to a closed stream."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    first, second = io.StringIO(), io.StringIO()
    try:
        monkeypatch.setattr(sys, "stderr", first)
        logs.setup("info")
        logging.getLogger("sfu.test").info("one")
        first.close()
        monkeypatch.setattr(sys, "stderr", second)
        logging.getLogger("sfu.test").info("two")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
    assert second.getvalue().rstrip().endswith("sfu.test: two")


def test_address_tags_hide_addresses_but_link_lines() -> None:
    tag = AddressTagger()
    assert tag("203.0.113.9") == tag("203.0.113.9") != tag("203.0.113.10")
    assert "203.0.113" not in tag("203.0.113.9") and tag("203.0.113.9").startswith("ip-")
    assert AddressTagger()("203.0.113.9") != tag("203.0.113.9")  # a new key per process
    assert AddressTagger(full=True)("203.0.113.9") == "203.0.113.9"


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.5) and not bucket.take(0.5)  # one token per 0.5 s
    assert bucket.full(100.0)  # never more than the burst
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]


def test_address_limits_count_and_release() -> None:
    limits = AddressLimits(Config(ip_max_connections=2, ip_connection_burst=10, ip_limits_exempt=["10.0.0.1"]))
    assert limits.admit("a", 0) is None and limits.admit("a", 0) is None
    refusal = limits.admit("a", 0)
    assert refusal is not None and refusal.code == "too_many_connections"
    limits.release("a")
    assert limits.admit("a", 0) is None
    for _ in range(50):
        assert limits.admit("10.0.0.1", 0) is None  # exempt
    for _ in range(2):
        limits.release("a")
    for _ in range(50):
        limits.release("10.0.0.1")
    assert limits.open == {}


def test_address_buckets_are_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AddressLimits, "SWEEP_AT", 100)
    limits = AddressLimits(Config(ip_connection_rate=1.0, ip_connection_burst=1, ip_limits_exempt=[]))
    for i in range(1000):
        address = f"198.51.100.{i % 250}-{i}"
        assert limits.admit(address, float(i)) is None
        limits.release(address)
    assert limits.tracked <= 101


def test_session_deadlines() -> None:
    limits = SessionLimits(Config(offer_timeout=10, ice_timeout=5, idle_timeout=100))
    limits.opened("s", 0.0)
    assert limits.overdue("s", 9.0, active=False) is None
    assert "no offer" in limits.overdue("s", 11.0, active=False)
    limits.negotiated("s", 11.0)
    assert limits.overdue("s", 15.0, active=False) is None
    assert "did not connect" in limits.overdue("s", 17.0, active=False)
    limits.media_connected("s")
    limits.message("s", 17.0)
    assert limits.overdue("s", 116.0, active=False) is None
    assert "idle" in limits.overdue("s", 118.0, active=False)
    assert limits.overdue("s", 118.0, active=True) is None  # waiting or paired: silence is fine
    limits.closed("s")
    assert limits.overdue("s", 1e9, active=False) is None


def test_forwarded_for_only_when_trusted() -> None:
    assert client_address("10.0.0.2", "203.0.113.9, 198.51.100.1", True) == "198.51.100.1"
    assert client_address("10.0.0.2", "203.0.113.9", False) == "10.0.0.2"
    assert client_address(None, None, True) == "?"


@pytest.mark.parametrize(
    "sdp, why",
    [
        ("garbage", "no audio or video"),
        (
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 7 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n"
            "c=IN IP4 0.0.0.0\r\na=mid:0\r\na=rtpmap:0 PCMU/8000\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n"
            "a=setup:actpass\r\na=fingerprint:sha-256 AB\r\n",
            "BUNDLE",
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\n"
            "a=mid:0\r\na=rtpmap:0 PCMU/8000\r\na=setup:actpass\r\na=fingerprint:sha-256 AB\r\n",
            "ICE",
        ),
    ],
)
def test_sdp_guard_refuses_offers_aiortc_would_half_apply(sdp: str, why: str | None) -> None:
    with pytest.raises(BadOffer) as caught:
        check_offer(sdp)
    if why:
        assert why in str(caught.value)
