"""The moderator API and console routes on aiohttp's test server: 401 without the token (nothing
leaked), dismiss/warn/ban/unban, CSRF on the console session, clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from sfu.moderation import ModerationIdentity, ModerationService, ModerationSettings
from sfu.moderation.api import setup_moderation_routes

from .moderation_helpers import (
    ADMIN_TOKEN,
    Clock,
    close_to,
    jpeg_colour,
    picture,
    settings_for,
)

ROOT = Path(__file__).resolve().parent.parent
BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PINK = (230, 40, 200)


def main_app_like() -> web.Application:
    """An app shaped like the server's: the browser client served from / as static files."""
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    return app


async def start(app: web.Application) -> TestClient:
    app.router.add_static("/", ROOT / "client")  # mounted last, as the server does
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def service(tmp_path, clock):
    svc = await ModerationService.open(settings_for(tmp_path), clock=clock)
    yield svc
    await svc.close()


@pytest.fixture
async def client(service, tmp_path, clock):
    app = main_app_like()
    assert setup_moderation_routes(app, service, service.settings, clock=clock)
    c = await start(app)
    yield c
    await c.close()


async def seed(service, clock, reporter=1, reported=2) -> int:
    outcome = await service.report(ModerationIdentity(f"dev-{reporter}", None),
                                   ModerationIdentity(f"dev-{reported}", f"net-{reported}"), "nudity", "on camera",
                                   [picture(PINK, clock.now - 1)])
    return outcome.report_id


async def test_without_a_valid_token_every_route_says_401_and_nothing_else(client, service, clock):
    report_id = await seed(service, clock)
    routes = [
        ("GET", "/api/mod/reports"), ("GET", f"/api/mod/reports/{report_id}"), ("GET", "/api/mod/reports/999"),
        ("GET", "/api/mod/evidence/1"), ("GET", "/api/mod/evidence/999"),
        ("POST", f"/api/mod/reports/{report_id}/actions"), ("GET", "/api/mod/bans"), ("DELETE", "/api/mod/bans/1"),
        ("GET", "/api/mod/audit"), ("GET", "/api/mod/session"), ("GET", "/api/mod/nothing-here"),
    ]
    bodies = set()
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {ADMIN_TOKEN}"},
                    {"Authorization": f"Bearer {ADMIN_TOKEN}x"}, {"Cookie": "sfu_mod=forged.value"}):
        for method, path in routes:
            response = await client.request(method, path, headers=headers, json={"action": "dismiss"})
            assert response.status == 401, (method, path, headers)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            bodies.add(await response.text())
    assert bodies == {json.dumps({"error": "unauthorized"})}
    detail = await service.report_detail(report_id)
    assert detail is not None and detail.report.status == "open"
    assert await service.list_audit() == []


async def test_console_and_api_are_off_without_a_token(tmp_path, clock):
    settings = ModerationSettings(data_dir=tmp_path)
    app = main_app_like()
    assert not setup_moderation_routes(app, None, settings)
    c = await start(app)
    try:
        for path in ("/mod", "/mod/", "/mod/index.html", "/mod/app.js", "/api/mod/reports", "/api/mod/session"):
            response = await c.get(path, headers=BEARER, allow_redirects=False)
            assert response.status == 404, path
        assert (await c.get("/healthz")).status == 200
    finally:
        await c.close()


async def test_the_console_page_is_served_with_strict_headers(client):
    response = await client.get("/mod", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/mod/"
    page = await client.get("/mod/")
    assert page.status == 200 and "Moderation" in await page.text()
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-store"
    script = await client.get("/mod/app.js")
    assert script.status == 200 and script.headers["Content-Type"].startswith("text/javascript")
    for path in ("/mod/%2e%2e%2fapp.js", "/mod/..%2Fapp.js", "/mod/missing.js", "/mod/index.py", "/mod/.hidden.js"):
        assert (await client.get(path)).status == 404, path


async def test_reports_evidence_and_actions_with_the_bearer_token(client, service, clock):
    report_id = await seed(service, clock)
    auto = (await service.automatic_detection(ModerationIdentity("dev-3", None), {"FEMALE_BREAST_EXPOSED": 0.93},
                                              [picture(PINK, clock.now)])).report_id
    listing = await (await client.get("/api/mod/reports?status=open", headers=BEARER)).json()
    assert [r["id"] for r in listing["reports"]] == [auto, report_id]
    manual = listing["reports"][1]
    assert manual["reason"] == "nudity" and manual["note"] == "on camera" and manual["source"] == "manual"
    assert manual["reported"] == {"device": "dev-2", "address_hash": "net-2"}
    assert listing["reports"][0]["labels"] == {"FEMALE_BREAST_EXPOSED": 0.93}
    automatic = await (await client.get("/api/mod/reports?source=automatic", headers=BEARER)).json()
    assert [r["id"] for r in automatic["reports"]] == [auto]

    detail = await (await client.get(f"/api/mod/reports/{report_id}", headers=BEARER)).json()
    [evidence] = detail["evidence"]
    assert evidence["url"] == f"/api/mod/evidence/{evidence['id']}" and evidence["width"] == 64
    assert detail["history"] == {"reports": 1, "strikes": 0, "bans": 0}
    image = await client.get(evidence["url"], headers=BEARER)
    assert image.status == 200 and image.headers["Content-Type"] == "image/jpeg"
    assert close_to(jpeg_colour(await image.read()), PINK)

    headers = {**BEARER, "X-Moderator": "ops-bot"}
    warned = await client.post(f"/api/mod/reports/{auto}/actions", headers=headers, json={"action": "warn"})
    assert warned.status == 200 and (await warned.json())["report"]["status"] == "warned"
    banned = await client.post(f"/api/mod/reports/{report_id}/actions", headers=headers,
                               json={"action": "ban", "duration_s": 3600, "scope": "device+address",
                                     "reason": "nudity"})
    body = await banned.json()
    assert banned.status == 200 and body["report"]["status"] == "banned"
    ban = body["ban"]
    assert ban["scope"] == "device+address" and ban["active"] and ban["created_by"] == "api:ops-bot"
    assert ban["until"].endswith("Z")
    assert await service.is_banned(ModerationIdentity("dev-2", None)) is not None

    bans = await (await client.get("/api/mod/bans", headers=BEARER)).json()
    assert [b["id"] for b in bans["bans"]] == [ban["id"]]
    lifted = await client.delete(f"/api/mod/bans/{ban['id']}", headers=BEARER)
    assert lifted.status == 200 and (await lifted.json())["ban"]["lifted_by"] == "api:token"
    assert (await (await client.get("/api/mod/bans", headers=BEARER)).json())["bans"] == []
    everything = await (await client.get("/api/mod/bans?all=1", headers=BEARER)).json()
    assert [b["active"] for b in everything["bans"]] == [False]
    again = await client.delete(f"/api/mod/bans/{ban['id']}", headers=BEARER)
    assert again.status == 409 and (await again.json())["error"] == "already_lifted"
    assert await service.is_banned(ModerationIdentity("dev-2", None)) is None

    dismissed = await client.post(f"/api/mod/reports/{report_id}/actions", headers=BEARER,
                                  json={"action": "dismiss"})
    assert (await dismissed.json())["report"]["status"] == "dismissed"
    audit = await (await client.get("/api/mod/audit", headers=BEARER)).json()
    assert [(e["action"], e["actor"]) for e in audit["entries"]] == [
        ("dismiss", "api:token"), ("unban", "api:token"), ("ban", "api:ops-bot"), ("warn", "api:ops-bot")]


async def sign_in(client, name="alice") -> str:
    response = await client.post("/api/mod/session", json={"token": ADMIN_TOKEN, "name": name})
    assert response.status == 200
    cookie = response.cookies["sfu_mod"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/api/mod"
    body = await response.json()
    assert body["actor"] == f"console:{name}" and body["csrf"]
    return body["csrf"]


async def test_console_session_needs_the_csrf_token_for_changes(client, service, clock):
    report_id = await seed(service, clock)
    wrong = await client.post("/api/mod/session", json={"token": "not the token", "name": "mallory"})
    assert wrong.status == 401 and "sfu_mod" not in wrong.cookies
    csrf = await sign_in(client)
    state = await (await client.get("/api/mod/session")).json()
    assert state["csrf"] == csrf and state["actor"] == "console:alice"
    assert (await client.get("/api/mod/reports")).status == 200  # reading needs only the cookie

    path = f"/api/mod/reports/{report_id}/actions"
    action = {"action": "ban", "duration_s": 3600}
    for headers in ({}, {"X-CSRF-Token": "guess"}, {"X-CSRF-Token": csrf, "Origin": "https://evil.example"}):
        refused = await client.post(path, json=action, headers=headers)
        assert refused.status == 403 and (await refused.json())["error"] == "csrf"
    assert (await client.delete("/api/mod/bans/1")).status == 403
    assert await service.list_bans() == [] and await service.list_audit() == []

    origin = str(client.make_url("")).rstrip("/")
    done = await client.post(path, json=action, headers={"X-CSRF-Token": csrf, "Origin": origin})
    assert done.status == 200
    ban_id = (await done.json())["ban"]["id"]
    lifted = await client.delete(f"/api/mod/bans/{ban_id}", headers={"X-CSRF-Token": csrf})
    assert lifted.status == 200
    assert [(e.action, e.actor) for e in await service.list_audit()] == [
        ("unban", "console:alice"), ("ban", "console:alice")]

    assert (await client.delete("/api/mod/session", headers={"X-CSRF-Token": csrf})).status == 200
    assert (await client.get("/api/mod/reports")).status == 401


async def test_bad_sign_in_requests(client):
    for body in (b"not json", b"[]", b"", b'{"token": 5}', b'{"name": "x"}', b"{" + b" " * 20000 + b"}"):
        response = await client.post("/api/mod/session", data=body)
        assert response.status in (400, 401, 413), body[:20]
        assert (await response.json())["error"] in ("bad_request", "unauthorized")
        assert "sfu_mod" not in response.cookies
    long_name = await client.post("/api/mod/session", json={"token": ADMIN_TOKEN, "name": "n\u0000" * 100})
    assert (await long_name.json())["actor"] == "console:" + "n" * 64


async def test_sessions_expire(client, clock):
    await sign_in(client)
    clock.advance(12 * 3600 + 1)
    assert (await client.get("/api/mod/reports")).status == 401


async def test_failed_sign_ins_are_throttled(client):
    for _ in range(10):
        assert (await client.post("/api/mod/session", json={"token": "nope"})).status == 401
    throttled = await client.post("/api/mod/session", json={"token": ADMIN_TOKEN})
    assert throttled.status == 429 and int(throttled.headers["Retry-After"]) > 0


@pytest.mark.parametrize("method, path, body, status, message", [
    ("POST", "/api/mod/reports/{id}/actions", b"{not json", 400, "JSON object"),
    ("POST", "/api/mod/reports/{id}/actions", b"[1, 2]", 400, "JSON object"),
    ("POST", "/api/mod/reports/{id}/actions", b"", 400, "JSON object"),
    ("POST", "/api/mod/reports/{id}/actions", b'{"action": "explode"}', 400, "action must be"),
    ("POST", "/api/mod/reports/{id}/actions", b'{"action": "ban", "duration_s": "soon"}', 400, "duration_s"),
    ("POST", "/api/mod/reports/{id}/actions", b'{"action": "ban", "duration_s": 10}', 400, "duration_s"),
    ("POST", "/api/mod/reports/{id}/actions", b'{"action": "ban", "duration_s": 60, "scope": 1}', 400, "scope"),
    ("POST", "/api/mod/reports/{id}/actions", b'{"action": "warn", "reason": 5}', 400, "reason"),
    ("POST", "/api/mod/reports/{id}/actions", b'{"action": "dismiss", "pad": "' + b"x" * 20000 + b'"}', 413,
     "bytes"),
    ("POST", "/api/mod/reports/999999/actions", b'{"action": "dismiss"}', 404, "no such report"),
    ("POST", "/api/mod/reports/99999999999/actions", b'{"action": "dismiss"}', 404, "no such"),
    ("GET", "/api/mod/reports?status=weird", None, 400, "status must be"),
    ("GET", "/api/mod/reports?source=weird", None, 400, "source must be"),
    ("GET", "/api/mod/reports?limit=0", None, 400, "limit"),
    ("GET", "/api/mod/reports?before=abc", None, 400, "before"),
    ("GET", "/api/mod/reports/999999", None, 404, "no such report"),
    ("GET", "/api/mod/evidence/999999", None, 404, "no such picture"),
    ("DELETE", "/api/mod/bans/999999", None, 404, "no such ban"),
    ("GET", "/api/mod/audit?limit=100000", None, 400, "limit"),
    ("PUT", "/api/mod/reports", None, 404, "no such API route"),
])
async def test_bad_input_gets_a_json_error_and_disturbs_nothing(client, service, clock, method, path, body, status,
                                                                message):
    report_id = await seed(service, clock)
    response = await client.request(method, path.format(id=report_id), data=body,
                                    headers={**BEARER, "Content-Type": "application/json"})
    assert response.status == status
    error = await response.json()
    assert set(error) == {"error", "message"} and message in error["message"]
    detail = await service.report_detail(report_id)
    assert detail is not None and detail.report.status == "open" and await service.list_audit() == []
    assert (await client.get(f"/api/mod/reports/{report_id}", headers=BEARER)).status == 200
