"""Helpers shared by the tests: databases, a running bot against the sandbox, waiting."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psycopg

PG_DSN = os.environ.get("SAFEGUARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REPO = Path(__file__).resolve().parent.parent
DEMO_CONFIG = REPO / "bot" / "demo" / "safeguard.yaml"
T = TypeVar("T")


def postgres_reachable() -> bool:
    try:
        with psycopg.connect(PG_DSN, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema of the test database; the SQLAlchemy URL puts it first on search_path."""
    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        base = PG_DSN.replace("postgresql://", "postgresql+psycopg://", 1)
        yield f"{base}?options=-csearch_path%3D{schema}&application_name={schema}"
    finally:
        _drop_schema(schema)


def _drop_schema(schema: str) -> None:
    """Drop a test's schema. A bot thread still finishing a query (a busy machine, a bot a test
    left running) would deadlock with DROP … CASCADE: end its sessions first, and try again."""
    for attempt in range(3):
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE application_name = %s AND pid <> pg_backend_pid()", (schema,))
            try:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
                return
            except (psycopg.errors.DeadlockDetected, psycopg.errors.LockNotAvailable):
                if attempt == 2:
                    raise
                time.sleep(0.2)


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> T:
    """Poll until predicate() is truthy (the bot works after its ack, as with Slack)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        time.sleep(interval)


def wait_serving(listening: Callable[[], str | None], timeout: float) -> str:
    """A `safeguard serve` subprocess: wait until `listening()` gives its URL, then until its
    /healthz says ready; returns the URL."""
    import httpx

    url = wait_for(listening, timeout, interval=0.05, what="the bot to listen")

    def healthy() -> bool:
        try:
            return httpx.get(url + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, timeout, interval=0.05, what="the bot to be healthy")
    return url


@dataclass
class RunningBot:
    bot: Any  # bot.app.Safeguard
    server: Any  # bot.server.BotServer
    sandbox: Any  # sandbox.server.Sandbox

    @property
    def core(self):
        return self.bot.core

    @property
    def driver(self):
        return self.sandbox.driver

    @property
    def ws(self):
        return self.sandbox.state

    def settle(self, timeout: float = 10.0) -> None:
        """Run every due task to completion (the outbox empties)."""
        from sqlalchemy import func, select

        from bot.clocks.now import utcnow
        from bot.db.models import Task

        def idle() -> bool:
            self.core.dispatcher.tick()
            with self.core.db.read() as session:
                busy = session.scalar(select(func.count(Task.id)).where(
                    ((Task.state == "pending") & (Task.not_before <= utcnow())) | (Task.state == "running")))
            return busy == 0 and self.core.dispatcher.drain(0.01)

        wait_for(idle, timeout, what="the outbox to empty")

    def provisioned(self, number: int, timeout: float = 10.0) -> Any:
        """Wait until the incident's Slack set-up (channel, checklist, topic, invites) is done;
        returns the sandbox's channel."""
        from bot.db.models import Incident

        def done():
            with self.core.db.read() as session:
                incident = session.get(Incident, number)
                return incident is not None and incident.provisioned_at is not None and incident.channel_id

        channel_id = wait_for(done, timeout, what=f"INC-{number} to be set up in Slack")
        return self.ws.channel(channel_id)

    def timeline(self, number: int) -> list[dict[str, Any]]:
        from bot.timeline.build import load_events

        with self.core.db.read() as session:
            return [e.to_json() for e in load_events(session, number)]

    def kinds(self, number: int) -> list[str]:
        return [e["kind"] for e in self.timeline(number)]
