"""TURN credentials per client (coturn use-auth-secret) and the ICE servers in ``welcome``.

That coturn accepts these credentials, and refuses expired or forged ones, is shown against a real
coturn in ``tests/test_nat.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from sfu.cli import _load as load_config
from sfu.cli import build_parser, main
from sfu.config import Config, IceServer
from sfu.turn import IceServerIssuer, rest_credentials

SECRET = "north-wind"
TURN_URL = "turn:turn.example.org:3478?transport=tcp"


def test_rest_credentials_follow_coturn_scheme() -> None:
    creds = rest_credentials(SECRET, 3600, now=1_700_000_000)
    expiry, user = creds.username.split(":")
    assert int(expiry) == creds.expires == 1_700_003_600
    assert user
    expected = hmac.new(SECRET.encode(), creds.username.encode(), hashlib.sha1).digest()
    assert base64.b64decode(creds.credential) == expected


def test_every_client_gets_its_own_credentials() -> None:
    issuer = IceServerIssuer(turn_urls=[TURN_URL], turn_secret=SECRET, turn_ttl=600)
    first, second = issuer.for_client(), issuer.for_client()
    assert first[0].username != second[0].username
    assert first[0].credential != second[0].credential


def test_fixed_servers_come_first_and_share_nothing_secret() -> None:
    stun = IceServer(urls="stun:stun.example.org:3478")
    issuer = IceServerIssuer(fixed=[stun], turn_urls=[TURN_URL, "turns:turn.example.org:443?transport=tcp"],
                             turn_secret=SECRET)
    servers = issuer.for_client(now=0)
    assert servers[0] == stun
    assert [s.urls for s in servers[1:]] == [TURN_URL, "turns:turn.example.org:443?transport=tcp"]
    assert servers[1].username == servers[2].username
    assert all(SECRET not in str(s.to_json()) for s in servers)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"turn_secret": SECRET},  # no URL
        {"turn_urls": [TURN_URL]},  # no secret: there is no static password
        {"turn_urls": ["stun:x.org"], "turn_secret": SECRET},
        {"turn_urls": [TURN_URL], "turn_secret": SECRET, "turn_ttl": 0},
    ],
)
def test_incomplete_turn_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        IceServerIssuer(**kwargs)


@pytest.fixture
def config() -> Config:
    return Config(host="127.0.0.1", port=0, turn_urls=[TURN_URL], turn_secret=SECRET, turn_ttl=120)


async def test_welcome_carries_fresh_turn_credentials(make_client) -> None:
    one = await make_client(1, connect=False)
    two = await make_client(2, connect=False)
    await one.open_socket()
    await two.open_socket()
    (a,), (b,) = one.welcome["iceServers"], two.welcome["iceServers"]
    assert a["urls"] == b["urls"] == TURN_URL
    assert a["username"] != b["username"]
    expected = hmac.new(SECRET.encode(), a["username"].encode(), hashlib.sha1).digest()
    assert base64.b64decode(a["credential"]) == expected
    assert SECRET not in str(one.welcome)
    expiry = int(a["username"].split(":")[0])
    assert time.time() + 60 < expiry <= time.time() + 120  # turn_ttl = 120 s


def test_cli_flags_reach_the_config(tmp_path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    args = build_parser().parse_args(
        ["serve", "--public-ip", "203.0.113.7", "--port-range", "40000-40099", "--turn-url", TURN_URL,
         "--turn-secret-file", str(secret_file), "--turn-ttl", "3600"]
    )
    config, _ = load_config(args)
    assert config.public_ip == "203.0.113.7"
    assert config.media_port_range() == (40000, 40099)
    assert config.turn_urls == [TURN_URL] and config.turn_ttl == 3600
    assert config.turn_secret_value() == SECRET


@pytest.mark.parametrize("bad", ["40000", "40100-40000", "80-90", "a-b", "40000-70000"])
def test_cli_refuses_bad_port_ranges(bad: str, capsys) -> None:
    assert main(["config", "--port-range", bad]) == 2
    assert "port_range" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--public-ip", "chat.example.org"], "not an IP address"),
        (["--turn-secret", SECRET], "--turn-url"),
        (["--turn-url", TURN_URL], "--turn-secret"),
    ],
)
def test_serve_refuses_inconsistent_network_settings(args: list, message: str) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "sfu", "serve", "--port", "0", *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr
