"""One async SQLAlchemy engine for SQLite (aiosqlite, the default) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_FILE = "moderation.sqlite3"
#: Execution option of a connection that only reads (SQLite: a deferred transaction, no write lock).
READ_ONLY = "sfu_read_only"


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{Path(data_dir).resolve() / SQLITE_FILE}"


def normalise_url(url: str) -> URL:
    """``postgresql://`` and ``postgres://`` -> asyncpg, ``sqlite://`` -> aiosqlite; ``ValueError`` else."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError("not a database URL (e.g. postgresql://USER:PASSWORD@HOST/DB)") from None
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ValueError("SQLite needs a file (an in-memory database would lose everything on restart)")
        return parsed.set(drivername="sqlite+aiosqlite")
    raise ValueError(f"unsupported database {backend!r} (use postgresql:// or sqlite:///PATH)")


def database_url_problem(url: str) -> str | None:
    try:
        normalise_url(url)
    except ValueError as exc:
        return str(exc)
    return None


#: Seconds a new SQLite file's switch to write-ahead logging is retried while another process holds
#: it (several workers starting at once on a fresh file).
WAL_PATIENCE = 10.0


def _write_ahead_log(cursor: Any) -> None:
    """Put the database in WAL mode (kept in the file: done once per file). Switching needs the file
    to itself, and SQLite answers "database is locked" at once, without its busy timeout, while
    another connection (another worker starting) holds it: try again for a while. Start-up only."""
    cursor.execute("PRAGMA journal_mode")
    row = cursor.fetchone()
    if row is not None and str(row[0]).lower() == "wal":
        return
    deadline = time.monotonic() + WAL_PATIENCE
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # the driver's OperationalError, as wrapped by the async adapter
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(url: str) -> AsyncEngine:
    """An engine for ``url`` (see :func:`normalise_url`).

    SQLite: one connection (writes from this process never contend), WAL, foreign keys on, and
    transactions begun explicitly so that migrations' DDL is transactional: writers ``BEGIN
    IMMEDIATE``, readers (:data:`READ_ONLY`) a plain ``BEGIN``, so processes sharing the file
    (``--workers``) never wait for each other to read."""
    parsed = normalise_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5)
    Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(parsed, pool_size=1, max_overflow=0, pool_timeout=60)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver must not begin transactions by itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=10000")
        _write_ahead_log(cursor)
        for pragma in ("foreign_keys=ON", "synchronous=NORMAL"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the write lock at once (no deadlock upgrading a read lock); readers take
        # none: in WAL mode they read a snapshot, whatever another process is writing.
        reading = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")

    return engine
