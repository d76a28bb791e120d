from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import freezegun
import pytest

# The web app (and the API's pydantic models) are imported lazily by create_bot. Import them now,
# before a test freezes time: a model whose `datetime` fields are first built under freezegun
# gets freezegun's FakeDatetime, for which pydantic has no schema.
import runtime.web  # noqa: E402, F401
from tests.support import DEMO_CONFIG, RunningBot, postgres_reachable, postgres_schema

_PG: bool | None = None

# pytest's own clock must not be frozen with the bot's: --durations would report decades.
freezegun.configure(extend_ignore_list=["_pytest.timing"])


def pytest_configure(config) -> None:
    # Slack's rate limits are off in the sandboxes tests build, for speed: the tests that
    # exercise them (test_rate_limits.py) turn them on. Benchmarks and the demo always run with them.
    os.environ.setdefault("SANDBOX_RATE_LIMITS", "off")


def _pg_ok() -> bool:
    global _PG
    if _PG is None:
        _PG = postgres_reachable()
    return _PG


@pytest.fixture(scope="session")
def _migrated_sqlite(tmp_path_factory) -> Path:
    from bot.db.engine import Database

    path = tmp_path_factory.mktemp("template") / "migrated.db"
    database = Database(f"sqlite:///{path}")
    database.upgrade()
    database.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path: Path) -> Iterator[str]:
    """Every test that touches the database runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        # A copy of a database migrated once per worker: the same schema, without running
        # Alembic again for every test.
        target = tmp_path / "safeguard.db"
        shutil.copyfile(request.getfixturevalue("_migrated_sqlite"), target)
        yield f"sqlite:///{target}"
        return
    if not _pg_ok():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 and CI is set: it must run here")
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    with postgres_schema() as url:
        yield url


@pytest.fixture
def sandbox() -> Iterator:
    from sandbox.server import Sandbox

    with Sandbox(signing_secret="test-signing-secret") as box:
        yield box


def make_bot(sandbox, db_url: str, *, config: Path = DEMO_CONFIG, playbooks: Path | None = None,
             start_scheduler: bool = True, env: dict[str, str] | None = None, **settings_overrides):
    from bot.db.engine import Database
    from bot.settings import Settings
    from runtime.app import create_bot
    from runtime.server import BotServer

    if not db_url.startswith("sqlite"):
        database = Database(db_url)
        database.upgrade()
        database.dispose()
    values = dict(
        slack_bot_token=sandbox.bot_token, slack_signing_secret="test-signing-secret",
        slack_api_url=sandbox.api_url, database_url=db_url, config_path=config, port=0,
        sweep_seconds=0.2, slack_retry_backoff=0.02, task_first_retry=0.1, db_pool_size=4,
        slack_pacing=sandbox.limits.enabled,  # the bot paces itself to the limits the sandbox has
    )
    if playbooks is not None:
        values["playbooks_dir"] = playbooks
    values.update(settings_overrides)
    env = {"PD_ROUTING_KEY": "test0routing0key0000000000000000", "SMTP_URL": "smtp://127.0.0.1:1", **(env or {})}
    bot = create_bot(Settings(**values), env=env)
    server = BotServer(bot, port=0)
    server.start(bot=start_scheduler)
    sandbox.set_bot_url(server.events_url)
    return RunningBot(bot=bot, server=server, sandbox=sandbox)


@pytest.fixture
def running(sandbox, db_url) -> Iterator[RunningBot]:
    handle = make_bot(sandbox, db_url)
    try:
        yield handle
    finally:
        handle.server.stop()
