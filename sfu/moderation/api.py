"""The moderator console (``/mod/``) and its JSON API (``/api/mod/...``), mounted on the main app.

With no moderator token configured both answer 404. Without a valid token (or console session) every
API route answers the same 401, whatever exists behind it. Errors are JSON:
``{"error": CODE, "message": TEXT}``.

    GET    /api/mod/reports?status=open|dismissed|warned|banned|all&source=manual|automatic&limit=&before=
    GET    /api/mod/reports/{id}             report, evidence URLs, the reported person's history
    GET    /api/mod/evidence/{id}            the JPEG
    POST   /api/mod/reports/{id}/actions     {"action":"dismiss"|"warn"|"ban","duration_s":N,
                                              "scope":"device"|"device+address","reason":TEXT}
    GET    /api/mod/bans?all=1               bans in force (all=1: every ban)
    DELETE /api/mod/bans/{id}                lift a ban
    GET    /api/mod/audit?limit=&before=     every moderator action, newest first
    POST/GET/DELETE /api/mod/session         console sign-in ({"token","name"}), state, sign-out
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from .actions import ActionError
from .auth import (
    CSRF_HEADER,
    SESSION_COOKIE,
    SESSION_PATH,
    ConsoleAuth,
    Principal,
    SignInThrottle,
)
from .console import SECURITY_HEADERS, ConsoleFiles, find_console_dir
from .origins import origin_allowed
from .records import REPORT_STATUSES, Ban, Evidence, Report, iso
from .service import ModerationService
from .settings import ModerationSettings

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
MAX_ID = 2**31 - 1
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(request: web.Request, status: int, code: str, message: str = "",
               headers: dict[str, str] | None = None) -> web.Response:
    if status != 401:  # 401s are routine (expired sessions) and say nothing new
        log.info("moderator API %s %s: %d %s%s", request.method, request.path, status, code,
                 f" ({message})" if message else "")
    body: dict[str, Any] = {"error": code}
    if message:
        body["message"] = message
    return web.json_response(body, status=status, headers={**SECURITY_HEADERS, **(headers or {})})


def ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, headers=SECURITY_HEADERS)


def evidence_url(item: Evidence) -> str:
    return f"/api/mod/evidence/{item.id}"


class ModerationApi:
    def __init__(self, service: ModerationService, auth: ConsoleAuth, clock: Callable[[], float]) -> None:
        self.service = service
        self.auth = auth
        self.clock = clock
        self.throttle = SignInThrottle()

    # -- authentication ------------------------------------------------------------------------
    def principal(self, request: web.Request) -> Principal | None:
        header = request.headers.get("Authorization")
        if header:
            return self.auth.bearer(header, request.headers.get("X-Moderator"))
        return self.auth.session(request.cookies.get(SESSION_COOKIE), self.clock())

    def guarded(self, handler: Callable[[web.Request, Principal], Awaitable[web.StreamResponse]],
                changes_state: bool = False) -> Handler:
        async def guard(request: web.Request) -> web.StreamResponse:
            who = self.principal(request)
            if who is None:
                return json_error(request, 401, "unauthorized", headers={"WWW-Authenticate": 'Bearer realm="sfu-mod"'})
            if changes_state and not self._same_origin_request(request, who):
                return json_error(request, 403, "csrf", "missing or wrong X-CSRF-Token, or a foreign Origin")
            try:
                return await handler(request, who)
            except ActionError as exc:
                return json_error(request, exc.status, exc.code, exc.message)

        return guard

    def _same_origin_request(self, request: web.Request, who: Principal) -> bool:
        if who.via != "session":
            return True
        if not origin_allowed(request.headers.get("Origin"), request.host):
            return False
        return self.auth.csrf_ok(who, request.headers.get(CSRF_HEADER))

    async def sign_in(self, request: web.Request) -> web.StreamResponse:
        now = self.clock()
        address = request.remote or "?"
        wait = self.throttle.retry_after(address, now)
        if wait is not None:
            return json_error(request, 429, "too_many_attempts", "too many failed sign-ins; wait a minute",
                              headers={"Retry-After": str(int(wait) + 1)})
        try:
            body = await read_json(request)
        except ActionError as exc:
            return json_error(request, exc.status, exc.code, exc.message)
        if not self.auth.token_matches(body.get("token") if isinstance(body.get("token"), str) else None):
            self.throttle.failed(address, now)
            log.info("moderator console: failed sign-in")
            return json_error(request, 401, "unauthorized")
        cookie, who = self.auth.new_session(body.get("name"), now)
        response = ok(_session_json(who))
        response.set_cookie(SESSION_COOKIE, cookie, path=SESSION_PATH, httponly=True, samesite="Strict",
                            secure=request.secure, max_age=int(self.auth.session_seconds))
        log.info("moderator console: %s signed in", who.actor)
        return response

    async def session_state(self, request: web.Request, who: Principal) -> web.StreamResponse:
        return ok(_session_json(who))

    async def sign_out(self, request: web.Request, who: Principal) -> web.StreamResponse:
        response = ok({"signed_out": True})
        response.del_cookie(SESSION_COOKIE, path=SESSION_PATH)
        return response

    # -- reports -------------------------------------------------------------------------------
    async def reports(self, request: web.Request, who: Principal) -> web.StreamResponse:
        status: str | None = request.query.get("status", "open")
        if status == "all":
            status = None
        elif status not in REPORT_STATUSES:
            raise ActionError("bad_request", f"status must be one of {', '.join(REPORT_STATUSES)} or all")
        source = request.query.get("source") or None
        limit = query_int(request, "limit", 50, 1, 500)
        before = query_int(request, "before", None, 1, MAX_ID)
        found = await self.service.list_reports(status=status, source=source, limit=limit, before_id=before)
        evidence = await self.service.evidence_for_reports([r.id for r in found])
        return ok({
            "reports": [_report_json(r, evidence.get(r.id, [])) for r in found],
            "next_before": found[-1].id if len(found) == limit else None,
        })

    async def report(self, request: web.Request, who: Principal) -> web.StreamResponse:
        detail = await self.service.report_detail(path_id(request))
        if detail is None:
            raise ActionError("not_found", "no such report", 404)
        now = self.clock()
        return ok({
            **_report_json(detail.report, detail.evidence),
            "history": detail.history,
            "bans": [b.to_json(now) for b in detail.bans],
        })

    async def evidence(self, request: web.Request, who: Principal) -> web.StreamResponse:
        found = await self.service.evidence_image(path_id(request))
        if found is None:
            raise ActionError("not_found", "no such picture (it may have been deleted after the retention period)",
                              404)
        item, data = found
        headers = {**SECURITY_HEADERS, "Cache-Control": "private, no-store",
                   "Content-Disposition": f'inline; filename="evidence-{item.id}.jpg"'}
        return web.Response(body=data, content_type="image/jpeg", headers=headers)

    async def action(self, request: web.Request, who: Principal) -> web.StreamResponse:
        body = await read_json(request)
        result = await self.service.act(
            path_id(request), body.get("action"), actor=who.actor, duration_s=body.get("duration_s"),
            scope=body.get("scope", "device"), reason=body.get("reason"),
        )
        now = self.clock()
        evidence = await self.service.evidence_for_reports([result.report.id])
        return ok({
            "report": _report_json(result.report, evidence.get(result.report.id, [])),
            "ban": result.ban.to_json(now) if result.ban else None,
            "also_resolved": result.also_resolved,
        })

    # -- bans and audit ------------------------------------------------------------------------
    async def bans(self, request: web.Request, who: Principal) -> web.StreamResponse:
        everything = request.query.get("all", "0") in ("1", "true", "yes")
        limit = query_int(request, "limit", 100, 1, 500)
        before = query_int(request, "before", None, 1, MAX_ID)
        now = self.clock()
        found: list[Ban] = await self.service.list_bans(active_only=not everything, limit=limit, before_id=before,
                                                        now=now)
        return ok({"bans": [b.to_json(now) for b in found],
                   "next_before": found[-1].id if len(found) == limit else None})

    async def unban(self, request: web.Request, who: Principal) -> web.StreamResponse:
        ban = await self.service.unban(path_id(request), actor=who.actor)
        return ok({"ban": ban.to_json(self.clock())})

    async def audit(self, request: web.Request, who: Principal) -> web.StreamResponse:
        limit = query_int(request, "limit", 100, 1, 500)
        before = query_int(request, "before", None, 1, MAX_ID)
        entries = await self.service.list_audit(limit=limit, before_id=before)
        return ok({"entries": [e.to_json() for e in entries],
                   "next_before": entries[-1].id if len(entries) == limit else None})


def _report_json(report: Report, evidence: list[Evidence]) -> dict:
    out = report.to_json()
    out["evidence"] = [e.to_json(evidence_url(e)) for e in evidence]
    return out


def _session_json(who: Principal) -> dict:
    return {"actor": who.actor, "csrf": who.csrf, "expires_at": iso(who.expires_at)}


async def read_json(request: web.Request) -> dict:
    """The request's JSON object (at most 16 KiB), else :class:`ActionError` 400."""
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise ActionError("bad_request", f"body over {MAX_BODY} bytes", 413)
    try:
        body = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (UnicodeDecodeError, ValueError):
        raise ActionError("bad_request", "body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ActionError("bad_request", "body must be a JSON object")
    return body


def query_int(request: web.Request, name: str, default: int | None, low: int, high: int) -> Any:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ActionError("bad_request", f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise ActionError("bad_request", f"{name} must be between {low} and {high}")
    return value


def path_id(request: web.Request) -> int:
    value = int(request.match_info["id"])  # the route only matches digits
    if not 1 <= value <= MAX_ID:
        raise ActionError("not_found", "no such item", 404)
    return value


async def _console_off(request: web.Request) -> web.StreamResponse:
    return web.json_response({"error": "not_found"}, status=404, headers=SECURITY_HEADERS)


def setup_moderation_routes(app: web.Application, service: ModerationService | None, settings: ModerationSettings,
                            *, console_dir: Path | None = None, clock: Callable[[], float] = time.time) -> bool:
    """Mount ``/mod/`` and ``/api/mod/`` on ``app``; returns whether the console is on.

    Off (every such path answers 404) when no moderator token is configured or ``service`` is None.
    Raises ``ValueError`` for an unreadable token file or a missing console directory."""
    token = settings.read_admin_token()
    if token is None or service is None:
        for path in ("/mod", "/mod/{tail:.*}", "/api/mod", "/api/mod/{tail:.*}"):
            app.router.add_route("*", path, _console_off)
        log.info("moderator console off (no moderator token configured)")
        return False
    directory = find_console_dir(console_dir)
    if directory is None:
        raise ValueError("moderator console files (client/mod/index.html) not found")
    files = ConsoleFiles(directory)
    api = ModerationApi(service, ConsoleAuth(token, settings.console_session_hours * 3600), clock)
    g = api.guarded
    router = app.router
    router.add_get("/mod", _redirect_to_console)
    router.add_get("/mod/", files.index)
    router.add_get("/mod/{name}", files.asset)
    router.add_post("/api/mod/session", api.sign_in)
    router.add_get("/api/mod/session", g(api.session_state))
    router.add_delete("/api/mod/session", g(api.sign_out, changes_state=True))
    router.add_get("/api/mod/reports", g(api.reports))
    router.add_get(r"/api/mod/reports/{id:\d{1,12}}", g(api.report))
    router.add_post(r"/api/mod/reports/{id:\d{1,12}}/actions", g(api.action, changes_state=True))
    router.add_get(r"/api/mod/evidence/{id:\d{1,12}}", g(api.evidence))
    router.add_get("/api/mod/bans", g(api.bans))
    router.add_delete(r"/api/mod/bans/{id:\d{1,12}}", g(api.unban, changes_state=True))
    router.add_get("/api/mod/audit", g(api.audit))
    router.add_route("*", "/api/mod/{tail:.*}", g(_unknown))
    log.info("moderator console on at /mod/")
    return True


async def _redirect_to_console(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/mod/")


async def _unknown(request: web.Request, who: Principal) -> web.StreamResponse:
    return json_error(request, 404, "not_found", "no such API route")
