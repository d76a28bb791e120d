"""Before the CLI reads a database: is there one, and does it hold Safeguard's tables?

SQLite creates a file on connect, so a reading command run in the wrong folder used to leave an
empty `safeguard.db` behind and then fail with a 60-line traceback. Here SQLite is looked at
without creating anything (the path first, then a read-only `mode=ro` connection), and
PostgreSQL is asked whether the tables are there (connecting never creates a database)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import create_engine, inspect, make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.db.engine import normalise_url

DEMO_URL = "sqlite:///safeguard-demo.db"  # what `safeguard demo` uses by default (runtime/cli.py)
DEMO_HINT = f"DATABASE_URL={DEMO_URL}"
REQUIRED_TABLE = "incidents"


class NoDatabase(Exception):
    """One line for the person at the terminal, naming the database."""


def shown(url: str) -> str:
    """The URL without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 (not even a URL: show nothing of it)
        return "(unreadable DATABASE_URL)"


def _advice() -> str:
    return (f"To read the demo's database, run this in the folder where you ran `safeguard demo` with "
            f"{DEMO_HINT}; to create a new one: safeguard db upgrade.")


def require_database(url: str, table: str = REQUIRED_TABLE) -> None:
    """Raise NoDatabase when `url` names a database that is missing or has no Safeguard tables
    (or not yet `table`, which a later migration made)."""
    try:
        parsed = make_url(normalise_url(url))
    except Exception:  # noqa: BLE001
        raise NoDatabase(f"DATABASE_URL is not a database URL ({shown(url)}).") from None
    if parsed.get_backend_name() == "sqlite":
        _require_sqlite(url, parsed.database, table)
    else:
        _require_server(url, table)


def _require_sqlite(url: str, database: str | None, table: str) -> None:
    if database in (None, "", ":memory:"):
        raise NoDatabase(f"DATABASE_URL={shown(url)} is an in-memory database: there is nothing to read. "
                         + _advice())
    path = Path(database).expanduser()
    where = f"{path.resolve()} (DATABASE_URL={shown(url)})"
    if not path.is_file():
        raise NoDatabase(f"No database at {where}. " + _advice())
    try:  # mode=ro: never creates the file, never writes to it
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:
        raise NoDatabase(f"{where} is not a readable SQLite database ({err}). " + _advice()) from None
    if REQUIRED_TABLE not in tables:
        state = "is empty (no tables: never migrated)" if not tables else "holds no Safeguard tables (not migrated)"
        raise NoDatabase(f"The database {where} {state}. " + _advice())
    if table not in tables:
        raise NoDatabase(f"The database {where} is older than this version: run `safeguard db upgrade`.")


def _require_server(url: str, table: str) -> None:
    engine = create_engine(normalise_url(url), pool_pre_ping=False)
    try:
        with engine.connect() as conn:
            has, current = inspect(conn).has_table(REQUIRED_TABLE), inspect(conn).has_table(table)
    except SQLAlchemyError as err:
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0][:200]
        raise NoDatabase(f"Cannot read the database at {shown(url)} ({reason}).") from None
    finally:
        engine.dispose()
    if not has:
        raise NoDatabase(f"The database at {shown(url)} holds no Safeguard tables (not migrated). " + _advice())
    if not current:
        raise NoDatabase(f"The database at {shown(url)} is older than this version: run `safeguard db upgrade`.")
