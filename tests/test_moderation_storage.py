"""Moderation storage on SQLite and on a real PostgreSQL this module starts itself: restarts lose
nothing, migrations are ordered and idempotent, the retention purge deletes old pictures (files and rows)."""

from __future__ import annotations

import asyncio
import os
import pwd

import pytest
from sqlalchemy import insert, inspect, text

from sfu.moderation.identity import ModerationIdentity
from sfu.moderation.service import ModerationService
from sfu.moderation.storage import (
    SCHEMA_VERSION,
    SchemaTooNew,
    current_version,
    migrate,
    normalise_url,
    sqlite_url,
)
from sfu.moderation.storage.engine import create_engine
from sfu.moderation.storage.schema import metadata
from sfu.moderation.storage.store import ModerationStore

from .moderation_helpers import (
    Clock,
    PostgresCluster,
    close_to,
    jpeg_colour,
    picture,
    postgres_bin,
    settings_for,
)

DAY = 86400.0
RED, BLUE = (220, 30, 30), (30, 30, 220)


def _postgres_usable() -> str | None:
    if postgres_bin() is None:
        return "PostgreSQL binaries not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "no postgres user to run initdb as"
    return None


@pytest.fixture(scope="module")
def pg_cluster():
    reason = _postgres_usable()
    if reason:
        pytest.skip(reason)
    cluster = PostgresCluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    cluster = request.getfixturevalue("pg_cluster")
    return await cluster.create_database()


async def open_service(tmp_path, database_url, clock, **overrides) -> ModerationService:
    return await ModerationService.open(settings_for(tmp_path, database_url, **overrides), clock=clock)


async def test_a_restart_loses_nothing(tmp_path, database_url):
    clock = Clock()
    alice, bob = ModerationIdentity("alice-device", "alice-net"), ModerationIdentity("bob-device", "bob-net")
    carol = ModerationIdentity("carol-device", None)
    service = await open_service(tmp_path, database_url, clock)
    try:
        outcome = await service.report(alice, bob, "harassment", "called me names",
                                       [picture(RED, clock.now - 2), picture(BLUE, clock.now - 1)])
        detection = await service.automatic_detection(carol, {"FEMALE_BREAST_EXPOSED": 0.91},
                                                      [picture(RED, clock.now)])
        clock.advance(10)
        banned = await service.ban(outcome.report_id, actor="console:mo", duration_s=DAY, scope="device+address",
                                   reason="harassment")
        assert banned.ban is not None
    finally:
        await service.close()

    clock.advance(60)
    service = await open_service(tmp_path, database_url, clock)  # a new engine on the same database
    try:
        detail = await service.report_detail(outcome.report_id)
        assert detail is not None
        assert detail.report.reason == "harassment" and detail.report.note == "called me names"
        assert detail.report.reporter == alice and detail.report.reported == bob
        assert detail.report.status == "banned" and detail.report.resolved_by == "console:mo"
        colours = []
        for item in detail.evidence:
            found = await service.evidence_image(item.id)
            assert found is not None
            colours.append(jpeg_colour(found[1]))
        assert len(colours) == 2 and close_to(colours[0], RED) and close_to(colours[1], BLUE)

        auto = await service.report_detail(detection.report_id)
        assert auto is not None and auto.report.source == "automatic" and auto.report.reporter is None
        assert auto.report.labels == {"FEMALE_BREAST_EXPOSED": 0.91} and len(auto.evidence) == 1

        ban = await service.is_banned(ModerationIdentity("bob-new-device", "bob-net"))  # by address
        assert ban is not None and ban.id == banned.ban.id and ban.until == pytest.approx(clock.now - 60 + DAY)
        assert await service.is_banned(bob) is not None
        assert [e.action for e in await service.list_audit()] == ["ban"]
        # Strikes survive too: two more detections make three, which bans carol.
        await service.automatic_detection(carol, {"MALE_GENITALIA_EXPOSED": 0.8})
        third = await service.automatic_detection(carol, {"MALE_GENITALIA_EXPOSED": 0.8})
        assert third.strikes == 3 and third.ban is not None
        assert await current_version(service.store.engine) == SCHEMA_VERSION
    finally:
        await service.close()


async def test_migrations_are_ordered_idempotent_and_keep_data(tmp_path, database_url):
    engine = create_engine(database_url)
    try:
        assert await current_version(engine) == 0
        assert await migrate(engine, now=1.0, target=1) == [1]
        assert await current_version(engine) == 1
        async with engine.begin() as conn:
            await conn.execute(insert(metadata.tables["mod_reports"]).values(
                created_at=5.0, reported_device="d", reason="spam", status="open", source="manual"))
            indexes = await conn.run_sync(lambda c: inspect(c).get_indexes("mod_reports"))
            assert indexes == []
        assert await migrate(engine, now=2.0) == list(range(2, SCHEMA_VERSION + 1))
        assert await migrate(engine, now=3.0) == []  # idempotent
        assert await current_version(engine) == SCHEMA_VERSION
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT reason FROM mod_reports"))).scalar_one() == "spam"
            names = {i["name"] for i in await conn.run_sync(lambda c: inspect(c).get_indexes("mod_reports"))}
            assert "ix_mod_reports_status" in names
            # The migrated schema is the one the queries use (no drift between migrations and schema.py).
            for table in metadata.sorted_tables:
                columns = await conn.run_sync(lambda c, t=table.name: inspect(c).get_columns(t))
                assert [c["name"] for c in columns] == [c.name for c in table.columns], table.name
        async with engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO mod_schema_version (version, description, applied_at) VALUES (999, 'future', 4)"))
        with pytest.raises(SchemaTooNew):
            await migrate(engine, now=5.0)
    finally:
        await engine.dispose()


async def test_nodes_migrating_at_once_apply_each_step_once(database_url):
    # Eight at once on a fresh file: SQLite's switch to WAL mode meets another process's lock
    # (answered at once, without the busy timeout) in about one start in ten without its retry.
    engines = [create_engine(database_url) for _ in range(8)]
    try:
        results = await asyncio.gather(*(migrate(e, now=1.0) for e in engines))
        assert sorted(v for applied in results for v in applied) == list(range(1, SCHEMA_VERSION + 1))
        async with engines[0].connect() as conn:
            versions = (await conn.execute(text("SELECT version FROM mod_schema_version ORDER BY version"))).scalars()
            assert list(versions) == list(range(1, SCHEMA_VERSION + 1))
    finally:
        for engine in engines:
            await engine.dispose()


async def test_reading_never_waits_for_another_process_writing(tmp_path):
    """Processes sharing one SQLite file (``--workers``): while one holds a write transaction,
    another reads (a ban check at connection time, the console) at once instead of queueing for the
    write lock (up to the 10 s busy timeout, then "database is locked")."""
    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    writer, reader = await ModerationStore.open(url, now=1.0), await ModerationStore.open(url, now=1.0)
    try:
        someone = ModerationIdentity("device-1", "address-1")
        async with writer.begin() as tx:
            await tx.add_report(now=2.0, reporter=None, reported=someone, reason="nudity", note=None, source="user")
            async with reader.read() as q:  # the other process: its read does not wait for this commit
                assert await asyncio.wait_for(q.active_ban(someone, 2.0), timeout=5.0) is None
                assert await asyncio.wait_for(q.list_reports(limit=10), timeout=5.0) == []  # a snapshot
        async with reader.read() as q:
            assert [r.reason for r in await q.list_reports(limit=10)] == ["nudity"]
    finally:
        await writer.close()
        await reader.close()


async def test_retention_purge_deletes_old_pictures_files_and_rows(tmp_path, database_url):
    clock = Clock()
    service = await open_service(tmp_path, database_url, clock, evidence_retention_days=30)
    someone, other = ModerationIdentity("a", None), ModerationIdentity("b", None)
    try:
        old = await service.report(someone, other, "nudity", None, [picture(RED, clock.now - 1)])
        clock.advance(20 * DAY)
        recent = await service.report(ModerationIdentity("c", None), other, "spam", None, [picture(BLUE, clock.now)])
        evidence_dir = tmp_path / "evidence"
        stray = evidence_dir / "2020-01-01" / "stray.jpg"
        stray.parent.mkdir(parents=True)
        stray.write_bytes(b"\xff\xd8\xff leftover")
        os.utime(stray, (clock.now - 40 * DAY, clock.now - 40 * DAY))
        old_files = [p for p in evidence_dir.rglob("*.jpg") if p != stray]
        assert len(old_files) == 2

        nothing = await service.purge(clock.now)  # nothing is 30 days old yet
        assert (nothing.pictures, nothing.rows) == (0, 0) and nothing.orphans == 1 and not stray.exists()

        clock.advance(11 * DAY)  # the first picture is now 31 days old, the second 11
        result = await service.purge()
        assert (result.pictures, result.rows, result.orphans) == (1, 1, 0)
        old_detail = await service.report_detail(old.report_id)
        assert old_detail is not None and old_detail.evidence == []  # the report itself stays
        recent_detail = await service.report_detail(recent.report_id)
        assert recent_detail is not None and len(recent_detail.evidence) == 1
        assert await service.evidence_image(recent_detail.evidence[0].id) is not None
        assert len(list(evidence_dir.rglob("*.jpg"))) == 1
        assert [e.action for e in await service.list_audit()][:1] == ["purge"]

        clock.advance(20 * DAY)
        assert (await service.housekeeping()).rows == 1
        assert list(evidence_dir.rglob("*.jpg")) == []
    finally:
        await service.close()


def test_database_urls():
    assert normalise_url("postgresql://u:p@h/db").drivername == "postgresql+asyncpg"
    assert normalise_url("postgres://u@h/db").drivername == "postgresql+asyncpg"
    assert normalise_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    for bad in ("mysql://h/db", "sqlite://", "nonsense"):
        with pytest.raises(ValueError):
            normalise_url(bad)
