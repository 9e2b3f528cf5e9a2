"""Moderation through the real server, with real aiortc clients: rules, a report with the server's own
pictures of the reported person, a ban that disconnects them at once and refuses their device until
it expires, bad input that disturbs nobody, the origin check, the device cookie and the metrics."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from sfu.config import Config
from sfu.headless import stamp
from sfu.headless.client import ClientError
from sfu.moderation.evidence_image import decode_jpeg
from sfu.moderation.identity import DEVICE_COOKIE, ModerationIdentity
from sfu.moderation.settings import ModerationSettings

from .moderation_helpers import ADMIN_TOKEN, Clock, device_of
from .ops_helpers import RawSocket
from .routing import pair_up
from .test_bad_input import assert_still_streaming

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
OTHER_SITE = "https://chat.example.org"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    rules = tmp_path / "rules.txt"
    rules.write_text("Be nice. No nudity.\n")
    (tmp_path / "rules.de.txt").write_text("Sei nett. Keine Nacktheit.\n")
    moderation = ModerationSettings(data_dir=tmp_path / "data", admin_token=ADMIN_TOKEN, rules_file=rules,
                                    allowed_origins=[OTHER_SITE])
    return Config(host="127.0.0.1", port=0, online_interval=0.2, moderation=moderation)


@pytest.fixture
async def api(server):
    async with aiohttp.ClientSession(base_url=server.url, headers=AUTH) as http:
        yield http


async def get_json(http: aiohttp.ClientSession, path: str) -> dict:
    async with http.get(path) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def wait_for(probe, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        found = await probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        await asyncio.sleep(0.1)


async def test_report_evidence_ban_refusal_and_expiry(make_client, server, api) -> None:
    clock = Clock(time.time())
    server.server.moderation.clock = clock  # the moderation decisions' wall clock, moved by hand below
    reporter = await make_client(201)
    reported = await make_client(202)
    await pair_up(reporter, reported)

    sent = time.monotonic()
    await reporter.report("nudity", "showed himself")
    report_id = (await reporter.expect("reported"))["report_id"]
    answered = time.monotonic()
    assert isinstance(report_id, int)
    # The reporter moves on at once; the reported person is told their partner left.
    await reporter.expect("waiting")
    moved_on = time.monotonic()
    await reported.expect("partner_left")

    # The report, with the server's own pictures of the reported person (the stamp proves whose).
    async def with_evidence():
        detail = await get_json(api, f"/api/mod/reports/{report_id}")
        return detail if detail["evidence"] else None

    detail = await wait_for(with_evidence, what="evidence")
    print(f"\n[moderation] report -> reported {1000 * (answered - sent):.0f} ms, -> moved on "
          f"{1000 * (moved_on - sent):.0f} ms, -> {len(detail['evidence'])} pictures stored "
          f"{time.monotonic() - sent:.1f} s (seen by polling every 0.1 s)")
    assert detail["reason"] == "nudity" and detail["note"] == "showed himself" and detail["source"] == "manual"
    assert detail["reporter"]["device"] == device_of(reporter.device_token)
    assert detail["reported"]["device"] == device_of(reported.device_token)
    assert detail["reported"]["address_hash"] is None  # loopback is never banned by address
    listed = await get_json(api, "/api/mod/reports?status=open")
    assert [r["id"] for r in listed["reports"]] == [report_id]
    assert len(detail["evidence"]) == server.server.moderation.settings.evidence_frames
    frames = []
    for item in detail["evidence"]:
        async with api.get(item["url"]) as response:
            assert response.status == 200 and response.content_type == "image/jpeg"
            picture = decode_jpeg(await response.read())
        found = stamp.read(picture)
        assert found is not None and found.sender == 202, "the evidence is the reported person's video"
        assert (picture.shape[1], picture.shape[0]) == (item["width"], item["height"]) == (320, 240)
        frames.append(found.frame)
    assert frames == sorted(set(frames)), f"distinct pictures, oldest first: {frames}"

    # A warning reaches the reported person where they are (and counts a strike).
    async with api.post(f"/api/mod/reports/{report_id}/actions",
                        json={"action": "warn", "reason": "keep your clothes on"}) as response:
        assert response.status == 200, await response.text()
    assert await reported.expect("moderation") == {"type": "moderation", "action": "warned",
                                                   "reason": "keep your clothes on"}
    assert not reporter.messages("moderation")

    # A moderator bans the reported person: they are disconnected at once, told until when and why.
    async with api.post(f"/api/mod/reports/{report_id}/actions",
                        json={"action": "ban", "duration_s": 120, "scope": "device", "reason": "nudity"}) as response:
        assert response.status == 200, await response.text()
        ban = (await response.json())["ban"]
    error = await reported.expect("error")
    assert error["code"] == "banned" and error["reason"] == "nudity" and error["until"] == ban["until"]
    assert (await reported.expect("_closed"))["code"] == 1008
    assert reporter.messages("error") == [] and not reporter.socket_closed

    # Refused at every connection with the same device cookie; another device is welcome.
    token = reported.device_token
    again = await make_client(202, connect=False, device_token=token)
    with pytest.raises(ClientError, match="banned"):
        await again.open_socket()
    refusal = again.messages("error")[0]
    assert refusal["until"] == ban["until"] and refusal["reason"] == "nudity"
    assert (await again.expect("_closed"))["code"] == 1008
    stranger = await make_client(203, connect=False)
    await stranger.open_socket()
    assert stranger.device_token != token

    # Once the ban has expired, the same device comes back and chats again.
    clock.advance(121)
    back = await make_client(202, device_token=token)
    assert back.device_token == token
    await back.start()
    await back.expect("waiting", "paired")

    metrics = await (await api.get("/metrics")).text()
    assert 'sfu_moderation_reports_total{reason="nudity",source="manual"} 1.0' in metrics
    assert 'sfu_moderation_moderator_actions_total{action="ban"} 1.0' in metrics
    assert 'sfu_moderation_moderator_actions_total{action="warn"} 1.0' in metrics
    assert "sfu_moderation_bans_active 1.0" in metrics  # counted when made; the expiry shows at the next refresh
    assert 'sfu_errors_total{code="banned"} 2.0' in metrics


async def test_rules_in_the_visitors_language_and_start_before_accepting(make_client, server) -> None:
    rules = server.server.moderation.rules
    german = await RawSocket.open(server.ws_url, headers={"Accept-Language": "fr;q=0.4, de-DE;q=0.9"})
    try:
        welcome = await german.until(lambda m: m["type"] == "welcome")
        assert welcome["rules"] == {"version": rules.version, "text": "Sei nett. Keine Nacktheit.\n", "language": "de"}
    finally:
        await german.close()

    client = await make_client(301, accept_rules=False)
    assert client.welcome["rules"]["text"] == "Be nice. No nudity.\n"
    await client.start()
    assert (await client.expect("error"))["code"] == "rules_not_accepted"
    await client.next()
    assert (await client.expect("error"))["code"] == "rules_not_accepted"
    await client.accept("0123456789ab")
    changed = await client.expect("error")
    assert changed["code"] == "rules_changed" and changed["rules"]["version"] == rules.version
    await client.accept(rules.version)
    await client.start()
    assert (await client.expect("waiting", "error"))["type"] == "waiting"


async def test_bad_reports_get_clear_errors_and_disturb_nobody(make_client, server, api) -> None:
    a, b = await make_client(101), await make_client(102)
    await pair_up(a, b)
    c, d = await make_client(103), await make_client(104)
    await pair_up(c, d)

    cases = [
        ({"type": "report", "reason": "rude"}, "bad_reason"),
        ({"type": "report"}, "bad_message"),
        ({"type": "report", "reason": "spam", "note": 12}, "bad_message"),
        ({"type": "report", "reason": "spam", "note": "x" * 501}, "note_too_long"),
    ]
    for message, code in cases:
        await c.send(message)
        error = await c.expect("error")
        assert error["code"] == code and error["message"], message
    assert not c.socket_closed and not d.messages("partner_left"), "refused reports change nothing"

    idle = await make_client(105)
    await idle.report("harassment")
    assert (await idle.expect("error"))["code"] == "nothing_to_report"

    # A flood of reports of the same person counts once: one report, the same id every time.
    for _ in range(10):
        await c.report("spam", "flood")
    ids = {(await c.expect("reported"))["report_id"] for _ in range(10)}
    assert len(ids) == 1
    await d.expect("partner_left")
    stored = await get_json(api, "/api/mod/reports?status=all")
    assert [r["id"] for r in stored["reports"] if r["reporter"]["device"] == device_of(c.device_token)] == list(ids)

    # Past the per-reporter limit (5 per 10 minutes), the next report is refused and the pair stays.
    await c.stop()
    await c.expect("idle")
    await d.stop()
    await d.expect("idle")
    service, reporter = server.server.moderation, server.server.safety.visitors[c.id].identity
    for n in range(4):
        await service.report(reporter, ModerationIdentity(f"someone-else-{n:04d}"), "spam")
    e = await make_client(106)
    await c.start()
    await e.start()
    await c.expect("paired")
    await e.wait_frame_from(103)
    await c.report("harassment")
    limited = await c.expect("error")
    assert limited["code"] == "report_rate_limited" and limited["retry_after"] > 0
    assert not e.messages("partner_left") and server.server.matchmaker.partner_of(c.id) == e.id

    await assert_still_streaming(a, b)


async def test_forged_device_token_gets_a_new_one(make_client, server) -> None:
    genuine = await make_client(401, connect=False)
    await genuine.open_socket()
    token = genuine.device_token
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for presented in (forged, "v1.not-a-device.sig", "garbage"):
        client = await make_client(402, connect=False, device_token=presented)
        await client.open_socket()  # welcomed, not refused
        assert client.device_token not in (presented, token)
        assert device_of(client.device_token) != device_of(token)
    # The page sets the cookie too, and keeps a valid one as it is.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(server.url + "/") as response:
            assert response.status == 200
            cookie = response.cookies[DEVICE_COOKIE]
            assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
        async with http.get(server.url + "/") as response:
            assert DEVICE_COOKIE not in response.cookies


async def test_websocket_origin_check(server) -> None:
    host = server.url.split("//", 1)[1]
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(server.ws_url, headers={"Origin": "https://evil.example"})
        assert refused.value.status == 403
        for origin in (f"http://{host}", OTHER_SITE, None):
            headers = {"Origin": origin} if origin else {}
            async with http.ws_connect(server.ws_url, headers=headers) as ws:
                assert (await ws.receive_json(timeout=10))["type"] == "welcome"


async def test_a_report_the_database_cannot_store_is_refused_and_can_be_sent_again(make_client, server) -> None:
    a, b = await make_client(501), await make_client(502)
    await pair_up(a, b)
    store = server.server.moderation.store
    async with store.begin() as tx:  # the database loses the table reports go to
        await tx.conn.exec_driver_sql("ALTER TABLE mod_reports RENAME TO mod_reports_gone")
    await a.report("spam")
    failed = await a.expect("error")
    assert failed["code"] == "report_failed" and not a.socket_closed
    assert server.server.matchmaker.partner_of(a.id) == b.id and not b.messages("partner_left")
    async with store.begin() as tx:
        await tx.conn.exec_driver_sql("ALTER TABLE mod_reports_gone RENAME TO mod_reports")
    await a.report("spam")
    assert isinstance((await a.expect("reported"))["report_id"], int)
    await b.expect("partner_left")


async def test_an_automatic_ban_disconnects_at_once(make_client, server) -> None:
    """Reported by enough different people (--reports-before-ban, 5): banned and disconnected by the report
    that makes five, without a moderator."""
    reporter, target = await make_client(601), await make_client(602)
    await pair_up(reporter, target)
    service = server.server.moderation
    identity = server.server.safety.visitors[target.id].identity
    for n in range(service.settings.reports_before_ban - 1):
        await service.report(ModerationIdentity(f"earlier-reporter-{n:04d}"), identity, "harassment")
    assert not target.messages("error")
    await reporter.report("harassment")
    await reporter.expect("reported")
    banned = await target.expect("error")
    assert banned["code"] == "banned" and banned["reason"] == "automatic: reported by 5 people"
    assert (await target.expect("_closed"))["code"] == 1008
    refused = await make_client(602, connect=False, device_token=target.device_token)
    with pytest.raises(ClientError, match="banned"):
        await refused.open_socket()
