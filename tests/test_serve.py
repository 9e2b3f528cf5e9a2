"""`sfu serve` as users run it: a separate process, real clients over loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

from sfu import __version__
from sfu.headless.client import HeadlessClient

from .routing import assert_routing


def get(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read().decode()


def test_cli_version_and_help() -> None:
    out = subprocess.run([sys.executable, "-m", "sfu", "--version"], capture_output=True, text=True, check=True)
    assert __version__ in out.stdout
    out = subprocess.run([sys.executable, "-m", "sfu", "serve", "--help"], capture_output=True, text=True, check=True)
    for flag in ("--host", "--port", "--media-address", "--ice-server"):
        assert flag in out.stdout


async def test_serve_process_pairs_real_clients(serve_process) -> None:
    url, proc = serve_process()
    status, ctype, body = get(url + "/healthz")
    health = json.loads(body)
    assert status == 200 and health["version"] == __version__
    assert health["participants"] == {"connected": 0, "waiting": 0, "paired": 0}
    status, ctype, body = get(url + "/")
    assert status == 200 and "text/html" in ctype and "<html" in body.lower()

    clients = [HeadlessClient(url, i) for i in (11, 12, 13)]
    try:
        for c in clients:
            await c.connect()
        a, b, c = clients
        t0 = time.monotonic()
        await a.start()
        await b.start()
        await a.expect("paired")
        await b.expect("paired")
        first = max((await a.wait_frame_from(12)).at, (await b.wait_frame_from(11)).at)
        print(f"[serve] start -> first partner frame: {first - t0:.3f} s")
        await c.start()
        await c.expect("waiting")
        t_next = time.monotonic()
        await b.next()
        await a.expect("partner_left")
        assert (await a.expect("paired"))["partner"] == c.id
        first = max((await a.wait_frame_from(13, since=t_next)).at, (await c.wait_frame_from(11, since=t_next)).at)
        print(f"[serve] next -> first new-partner frame: {first - t_next:.3f} s")
        health = json.loads(get(url + "/healthz")[2])
        assert health["participants"] == {"connected": 3, "waiting": 1, "paired": 2}
        ids = {x.id: x.sender_id for x in clients}
        for x in clients:
            assert_routing(x, ids)
    finally:
        for c in clients:
            await c.close()
    assert proc.poll() is None, "the server exited"


def status_of(url: str, headers: dict | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_serve_keeps_moderation_data_and_mounts_the_console_with_a_token(serve_process, tmp_path) -> None:
    """One command: the moderation database and device secret under the default data directory
    ($XDG_DATA_HOME/sfu; the fixture gives each server its own $XDG_DATA_HOME); the console off
    without a moderator token, on with --admin-token-file."""
    url, _ = serve_process()
    default = tmp_path / "xdg-0" / "sfu"
    assert (default / "moderation.sqlite3").is_file() and (default / "device-secret").is_file()
    assert oct((default / "device-secret").stat().st_mode & 0o777) == "0o600"
    assert status_of(url + "/mod/") == 404 and status_of(url + "/api/mod/reports") == 404

    token = tmp_path / "admin-token"
    token.write_text("serve-moderator-token-0123456789\n")
    url, _ = serve_process("--admin-token-file", str(token), "--data-dir", str(tmp_path / "data"))
    assert (tmp_path / "data" / "moderation.sqlite3").is_file()
    assert status_of(url + "/mod/") == 200
    assert status_of(url + "/api/mod/reports") == 401
    assert status_of(url + "/api/mod/reports", {"Authorization": "Bearer serve-moderator-token-0123456789"}) == 200
    metrics = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
    assert "sfu_moderation_bans_active 0.0" in metrics and "sfu_moderation_reports_refused_total" in metrics
