"""Engine and transactions.

SQLite: WAL, a busy timeout, and write transactions that start with BEGIN IMMEDIATE, so two
writers queue instead of failing half-way with "database is locked"; within one process they
queue on a lock first (SQLite's busy handler sleeps up to 100 ms between tries, which made
concurrent declarations wait up to a second: bench/ack.py). PostgreSQL: row locks
(SELECT … FOR UPDATE) where order matters, conditional UPDATEs for claims.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

_BUSY_TIMEOUT = 30  # seconds a SQLite writer waits for another (busy_timeout below)


def normalise_url(url: str) -> str:
    # Users write postgresql://…; we ship psycopg 3, not psycopg2.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        pool: dict = {}
        if make_url(url).database not in (None, "", ":memory:"):
            # A connection for every worker thread (SQLite connections are cheap): the default
            # 5 + 10 made threads queue for a connection behind writers queued for the lock.
            pool = {"pool_size": pool_size, "max_overflow": 100}
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **pool)
        _configure_sqlite(engine)
        return engine
    # Per process: pool_size + max_overflow connections at most. Threads beyond that wait
    # (pool_timeout) rather than exhaust the server's max_connections across replicas.
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_timeout=60, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url, pool_size=pool_size)
        self.is_sqlite = self.url.startswith("sqlite")
        self._write = sessionmaker(self.engine, expire_on_commit=False)
        reader = self.engine.execution_options(sqlite_begin="DEFERRED") if self.is_sqlite else self.engine
        self._read = sessionmaker(reader, expire_on_commit=False)
        # SQLite has one writer at a time: queue this process's writers here (woken as soon as
        # the previous one commits) rather than in SQLite's sleeping busy handler. Reentrant, so
        # a nested write transaction behaves as before; other processes still meet busy_timeout.
        self._write_lock = threading.RLock() if self.is_sqlite else None

    @contextmanager
    def _writer_turn(self) -> Iterator[None]:
        # Wait at most as long as the busy timeout; then leave it to SQLite, as before the lock.
        held = self._write_lock is not None and self._write_lock.acquire(timeout=_BUSY_TIMEOUT)
        try:
            yield
        finally:
            if held:
                self._write_lock.release()

    @contextmanager
    def tx(self) -> Iterator[Session]:
        """A write transaction: commits on success, rolls back on any exception."""
        with self._writer_turn(), self._write() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session, session.begin():
            yield session

    def upgrade(self) -> None:
        from .migrate import upgrade

        upgrade(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


def sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return Path(url[len("sqlite:///"):])
    return None
