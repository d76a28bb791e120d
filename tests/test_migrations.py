"""Every migration, on SQLite and PostgreSQL: the head matches the models exactly, and the chain
goes down one revision at a time (each step removing what its revision added) and up again.

One walk for all revisions, instead of one up-down-up per migration: the same guarantees, at a
fraction of the cost in the five-minute suite."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from bot.db.engine import Database
from bot.db.migrate import alembic_config, current, head
from bot.db.models import Base

# What each revision adds: (table, None) for a table, (table, "column"), or (table, "ix:name").
ADDS = {
    "0002": [("exposure_ledger", None), ("wellbeing_breaks", None), ("wellbeing_nudges", None)],
    "0003_api": [("api_tokens", None), ("api_idempotency", None), ("evidence", None), ("evidence_hashes", None),
                 ("incidents", "external_id")],
    "0004_pages": [("page_messages", None), ("pages", "levels"), ("pages", "step_id"), ("pages", "withdrawn_why")],
    "0005_scale": [("tasks", "priority"), ("tasks", "ix:ix_tasks_claim")],
    "0006_hours": [("timeline_events", "ix:ix_timeline_actor_at")],
}


def _present(engine, table: str, what: str | None) -> bool:
    inspector = inspect(engine)
    if table not in inspector.get_table_names():
        return False
    if what is None:
        return True
    if what.startswith("ix:"):
        return what[3:] in {ix["name"] for ix in inspector.get_indexes(table)}
    return what in {column["name"] for column in inspector.get_columns(table)}


def _drift(engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), Base.metadata)


def test_every_migration_goes_down_and_up_and_the_head_matches_the_models(db_url):
    database = Database(db_url)
    try:
        database.upgrade()
        assert current(database.engine) == head()
        assert _drift(database.engine) == []
        config = alembic_config(database.engine)
        revisions = [r.revision for r in ScriptDirectory.from_config(config).walk_revisions()]  # newest first
        assert set(ADDS) <= set(revisions), "a migration this test does not know"
        for revision in revisions:
            if revision not in ADDS:
                continue
            assert all(_present(database.engine, *item) for item in ADDS[revision]), revision
            command.downgrade(config, "-1")
            assert not any(_present(database.engine, *item) for item in ADDS[revision]), revision
        command.upgrade(config, "head")
        assert current(database.engine) == head()
        assert _drift(database.engine) == []
    finally:
        database.dispose()
