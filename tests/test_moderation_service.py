"""ModerationService on SQLite: reports, dedupe, rate limit, detections, strikes, escalating bans,
moderator actions with audit entries, listeners and metrics."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from sfu.moderation import (
    ActionError,
    ModerationIdentity,
    ModerationService,
    ReportRefused,
)
from sfu.moderation.records import EvidenceImage

from .moderation_helpers import (
    Clock,
    close_to,
    jpeg_colour,
    make_jpeg,
    picture,
    settings_for,
)

HOUR, DAY = 3600.0, 86400.0
GREEN = (40, 200, 60)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def service(tmp_path, clock, registry):
    svc = await ModerationService.open(settings_for(tmp_path), clock=clock, registry=registry)
    yield svc
    await svc.close()


def person(n: int, address: str | None = None) -> ModerationIdentity:
    return ModerationIdentity(f"device-{n}", address)


def metric(registry: CollectorRegistry, name: str, **labels) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_a_report_stores_the_servers_pictures_of_the_reported_person(service, clock, registry):
    outcome = await service.report(person(1), person(2, "net-2"), "nudity", "  flashed me  ",
                                   [picture(GREEN, clock.now - 1, 96, 64)])
    assert not outcome.duplicate and outcome.ban is None
    detail = await service.report_detail(outcome.report_id)
    assert detail is not None
    r = detail.report
    assert (r.reason, r.note, r.status, r.source) == ("nudity", "flashed me", "open", "manual")
    assert r.reporter == person(1) and r.reported == person(2, "net-2") and r.created_at == clock.now
    [item] = detail.evidence
    assert (item.width, item.height, item.captured_at) == (96, 64, clock.now - 1)
    found = await service.evidence_image(item.id)
    assert found is not None and close_to(jpeg_colour(found[1]), GREEN)
    assert detail.history == {"reports": 1, "strikes": 0, "bans": 0}
    assert metric(registry, "sfu_moderation_reports_total", reason="nudity", source="manual") == 1


async def test_only_the_most_recent_usable_pictures_are_kept(service, clock):
    jpeg = make_jpeg(32, 24, GREEN)
    pictures = [
        EvidenceImage(b"GIF89a not a jpeg", clock.now, 32, 24),
        EvidenceImage(jpeg + b"\0" * 2_000_000, clock.now, 32, 24),  # over max_evidence_bytes
        EvidenceImage(jpeg, clock.now, 0, 24),
        *[EvidenceImage(jpeg, clock.now - 10 + i, 32, 24) for i in range(5)],
    ]
    outcome = await service.report(person(1), person(2), "other", None, pictures)
    detail = await service.report_detail(outcome.report_id)
    assert detail is not None
    assert [e.captured_at for e in detail.evidence] == [clock.now - 8, clock.now - 7, clock.now - 6]  # 3 newest


async def test_bad_reports_are_refused_and_store_nothing(service, clock, registry):
    cases = [
        (("rude", None), "bad_reason"),
        (("spam", "x" * 501), "note_too_long"),
        (("spam", 12), "bad_message"),
    ]
    for (reason, note), code in cases:
        with pytest.raises(ReportRefused) as info:
            await service.report(person(1), person(2), reason, note)
        assert info.value.code == code
    with pytest.raises(ReportRefused) as info:
        await service.report(person(1), person(1), "spam")
    assert info.value.code == "cannot_report_self"
    assert await service.list_reports(status=None) == []
    assert metric(registry, "sfu_moderation_reports_refused_total", code="bad_reason") == 1


async def test_the_same_reporter_reporting_the_same_person_counts_once(service, clock, registry):
    first = await service.report(person(1), person(2), "harassment", None, [picture(GREEN, clock.now)])
    clock.advance(60)
    again = await service.report(person(1), person(2), "spam", "again", [picture(GREEN, clock.now)])
    assert again.duplicate and again.report_id == first.report_id
    assert len(await service.list_reports()) == 1
    other = await service.report(person(3), person(2), "harassment")  # someone else: a new report
    assert not other.duplicate and other.report_id != first.report_id
    clock.advance(DAY)
    later = await service.report(person(1), person(2), "harassment")  # outside the dedupe window
    assert not later.duplicate
    assert metric(registry, "sfu_moderation_reports_refused_total", code="duplicate") == 1


async def test_report_flood_is_rate_limited_per_reporter(service, clock):
    for n in range(5):
        clock.advance(1)
        await service.report(person(1), person(100 + n), "spam")
    with pytest.raises(ReportRefused) as info:
        await service.report(person(1), person(200), "spam")
    assert info.value.code == "report_rate_limited" and 0 < info.value.retry_after <= 600
    assert info.value.to_json()["retry_after"] == pytest.approx(info.value.retry_after, abs=0.1)
    await service.report(person(2), person(200), "spam")  # others are not affected
    clock.advance(600)
    await service.report(person(1), person(200), "spam")


async def test_detections_strike_and_ban_with_escalating_durations(service, clock, registry):
    bans = []
    service.on_ban(bans.append)
    offender = person(7, "net-7")
    durations = []
    for round_ in range(4):
        for n in range(3):
            outcome = await service.automatic_detection(offender, {"MALE_GENITALIA_EXPOSED": 0.9},
                                                        [picture(GREEN, clock.now)])
            assert outcome.strikes == n + 1
            clock.advance(5)
        assert outcome.ban is not None and bans[-1] == outcome.ban
        assert outcome.ban.created_by == "automatic" and outcome.ban.address_hash is None  # device only
        assert await service.is_banned(offender) == outcome.ban
        assert await service.is_banned(ModerationIdentity("other-device", "net-7")) is None
        durations.append(outcome.ban.until - outcome.ban.created_at)
        clock.now = outcome.ban.until + 1  # the ban expires
        assert await service.is_banned(offender) is None
    assert durations == [HOUR, DAY, 7 * DAY, 7 * DAY]
    assert metric(registry, "sfu_moderation_detections_total", reason="nudity") == 12
    assert metric(registry, "sfu_moderation_bans_total", by="automatic") == 4
    audit = await service.list_audit()
    assert [e.action for e in audit] == ["ban"] * 4 and audit[0].actor == "automatic"


async def test_strikes_outside_the_window_do_not_add_up(service, clock):
    offender = person(8)
    for _ in range(2):
        await service.automatic_detection(offender, {"ANUS_EXPOSED": 0.7})
    clock.advance(DAY + 1)
    outcome = await service.automatic_detection(offender, {"ANUS_EXPOSED": 0.7})
    assert outcome.strikes == 1 and outcome.ban is None


async def test_reports_from_several_people_ban_automatically(tmp_path, clock):
    service = await ModerationService.open(settings_for(tmp_path, reports_before_ban=3), clock=clock)
    try:
        target = person(9)
        for n in range(4):  # one person with four devices behind one address counts once
            assert (await service.report(person(20 + n, "same-net"), target, "harassment")).ban is None
        assert (await service.report(person(30, "net-a"), target, "harassment")).ban is None
        outcome = await service.report(person(31, "net-b"), target, "harassment")
        assert outcome.ban is not None and outcome.ban.reason == "automatic: reported by 3 people"
        assert await service.is_banned(target) is not None
    finally:
        await service.close()


async def test_moderator_actions_are_audited_and_notify(service, clock, registry):
    warned, banned, lifted = [], [], []
    service.on_warn(warned.append)
    service.on_ban(banned.append)

    async def async_listener(ban):
        lifted.append(ban)

    service.on_unban(async_listener)
    service.on_ban(lambda ban: 1 / 0)  # a broken listener changes nothing for the others
    target = person(5, "net-5")
    first = await service.report(person(1), target, "spam")
    second = await service.report(person(2), target, "harassment")
    third = await service.report(person(3), target, "nudity")

    result = await service.act(first.report_id, "dismiss", actor="console:mo", reason="not spam")
    assert result.report.status == "dismissed" and result.report.resolved_by == "console:mo"
    result = await service.act(second.report_id, "warn", actor="console:mo")
    assert result.report.status == "warned" and result.ban is None
    assert warned[0].identity == target and "harassment" in warned[0].reason
    clock.advance(30)
    result = await service.act(third.report_id, "ban", actor="console:mo", duration_s=7200, scope="device+address",
                               reason="nudity on camera")
    ban = result.ban
    assert ban is not None and banned == [ban] and ban.scope == "device+address"
    assert ban.until == clock.now + 7200 and ban.reason == "nudity on camera" and ban.report_id == third.report_id
    assert await service.is_banned(ModerationIdentity("fresh-device", "net-5")) == ban  # address covered
    assert [b.id for b in await service.list_bans()] == [ban.id]
    assert metric(registry, "sfu_moderation_bans_active") == 1

    lifted_ban = await service.unban(ban.id, actor="console:mo")
    assert lifted_ban.lifted_by == "console:mo" and lifted == [lifted_ban]
    assert await service.is_banned(target) is None and await service.list_bans() == []
    assert [b.id for b in await service.list_bans(active_only=False)] == [ban.id]
    assert metric(registry, "sfu_moderation_bans_active") == 0
    with pytest.raises(ActionError) as info:
        await service.unban(ban.id, actor="console:mo")
    assert info.value.status == 409

    audit = await service.list_audit()
    assert [(e.action, e.actor) for e in audit] == [
        ("unban", "console:mo"), ("ban", "console:mo"), ("warn", "console:mo"), ("dismiss", "console:mo")]
    assert audit[1].detail["ban_id"] == ban.id and audit[3].detail == {"reason": "not spam"}
    for action in ("dismiss", "warn", "ban", "unban"):
        assert metric(registry, "sfu_moderation_moderator_actions_total", action=action) == 1


async def test_a_ban_closes_the_persons_other_open_reports(service):
    target = person(6)
    ids = [(await service.report(person(n), target, "spam")).report_id for n in (1, 2, 3)]
    result = await service.ban(ids[0], actor="m", duration_s=HOUR)
    assert sorted(result.also_resolved) == sorted(ids[1:])
    assert await service.list_reports(status="open") == []
    assert {r.status for r in await service.list_reports(status=None)} == {"banned"}


async def test_address_bans_never_cover_exempt_addresses(service):
    target = person(4, None)  # loopback or exempt: no address hash
    report = await service.report(person(1), target, "spam")
    result = await service.ban(report.report_id, actor="m", duration_s=HOUR, scope="device+address")
    assert result.ban is not None and result.ban.address_hash is None and result.ban.scope == "device"
    assert await service.is_banned(ModerationIdentity("another-device", None)) is None


async def test_warnings_are_strikes(service, clock):
    target = person(3)
    outcome = None
    for n in range(3):
        report = await service.report(person(10 + n), target, "harassment")
        outcome = await service.warn(report.report_id, actor="m")
    assert outcome is not None and outcome.ban is not None and outcome.ban.until == clock.now + HOUR


@pytest.mark.parametrize("kwargs, code, status", [
    ({"action": "delete"}, "bad_request", 400),
    ({"action": "ban"}, "bad_request", 400),
    ({"action": "ban", "duration_s": "1h"}, "bad_request", 400),
    ({"action": "ban", "duration_s": True}, "bad_request", 400),
    ({"action": "ban", "duration_s": -5}, "bad_request", 400),
    ({"action": "ban", "duration_s": float("inf")}, "bad_request", 400),
    ({"action": "ban", "duration_s": 1e12}, "bad_request", 400),
    ({"action": "ban", "duration_s": 3600, "scope": "planet"}, "bad_request", 400),
    ({"action": "warn", "reason": "x" * 501}, "bad_request", 400),
    ({"action": "dismiss", "reason": ["list"]}, "bad_request", 400),
])
async def test_bad_moderator_input_is_refused(service, kwargs, code, status):
    report = await service.report(person(1), person(2), "spam")
    action = kwargs.pop("action")
    with pytest.raises(ActionError) as info:
        await service.act(report.report_id, action, actor="m", **kwargs)
    assert (info.value.code, info.value.status) == (code, status)
    after = await service.report_detail(report.report_id)
    assert after is not None and after.report.status == "open"
    assert await service.list_bans() == [] and await service.list_audit() == []


async def test_unknown_report_or_ban(service):
    with pytest.raises(ActionError) as info:
        await service.act(12345, "dismiss", actor="m")
    assert info.value.status == 404
    with pytest.raises(ActionError) as info:
        await service.unban(12345, actor="m")
    assert info.value.status == 404
    assert await service.report_detail(12345) is None and await service.evidence_image(12345) is None
