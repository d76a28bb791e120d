"""The CLI against a database that is missing or was never migrated: one line naming it, how to
point at the demo's, exit 1, nothing created; and no traceback ever reaches the terminal."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from runtime.cli import main
from tests.support import DEMO_CONFIG, postgres_reachable, postgres_schema

READERS = [["timeline", "INC-1"], ["timeline", "1", "--format", "json"], ["verify", "INC-1"],
           ["wellbeing", "--format", "json"]]


def run(url: str, *args: str, **env: str):
    return CliRunner().invoke(main, list(args), env={"DATABASE_URL": url, "SAFEGUARD_CONFIG": str(DEMO_CONFIG),
                                                     "SAFEGUARD_DEBUG": "", **env})


def one_line_refusal(result, *, names: str) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output and names in lines[0]
    assert "DATABASE_URL=sqlite:///safeguard-demo.db" in lines[0]
    return lines[0]


@pytest.mark.parametrize("args", READERS)
def test_a_missing_sqlite_database_is_named_and_not_created(tmp_path: Path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)  # the default URL is relative: sqlite:///safeguard.db
    for url, path in [("sqlite:///safeguard.db", tmp_path / "safeguard.db"),
                      (f"sqlite:///{tmp_path / 'elsewhere.db'}", tmp_path / "elsewhere.db")]:
        line = one_line_refusal(run(url, *args), names=str(path))
        assert line.startswith("Error: No database at")
        assert not path.exists() and list(tmp_path.iterdir()) == []  # nothing created, no -wal either


def test_an_empty_or_foreign_sqlite_file_is_refused_untouched(tmp_path: Path):
    empty = tmp_path / "empty.db"
    empty.touch()
    line = one_line_refusal(run(f"sqlite:///{empty}", "timeline", "INC-1"), names=str(empty))
    assert "is empty" in line and empty.stat().st_size == 0
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (x)")
    before = foreign.read_bytes()
    line = one_line_refusal(run(f"sqlite:///{foreign}", "verify", "INC-1"), names=str(foreign))
    assert "no Safeguard tables" in line and foreign.read_bytes() == before
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    assert "not a readable SQLite database" in one_line_refusal(run(f"sqlite:///{garbage}", "wellbeing"),
                                                                names=str(garbage))


def test_an_unmigrated_postgres_schema_is_refused_in_one_line():
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    with postgres_schema() as url:
        line = one_line_refusal(run(url, "timeline", "INC-1"), names="127.0.0.1")
        assert "not migrated" in line
    refused = run("postgresql://postgres@127.0.0.1:1/nowhere", "verify", "INC-1")
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert refused.output.startswith("Error: Cannot read the database at postgresql://postgres@127.0.0.1:1/nowhere")


def test_an_unexpected_error_is_one_line_unless_debugging(tmp_path: Path, monkeypatch):
    import runtime.cli as cli

    def broken(*_a, **_k):
        raise RuntimeError("disk on fire\nsecond line with details")

    monkeypatch.setattr(cli, "_core", broken)
    result = run("sqlite:///x.db", "timeline", "INC-1")
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: RuntimeError: disk on fire (run with --debug, or SAFEGUARD_DEBUG=1, "
                                     "for the full trace)")
    debugging = run("sqlite:///x.db", "--debug", "timeline", "INC-1")
    assert isinstance(debugging.exception, RuntimeError)  # the trace is there for whoever asked
    assert isinstance(run("sqlite:///x.db", "timeline", "INC-1", SAFEGUARD_DEBUG="1").exception, RuntimeError)


def test_a_migrated_database_still_reads(db_url: str):
    from bot.db.engine import Database

    if not db_url.startswith("sqlite"):  # the SQLite fixture is a migrated copy already
        database = Database(db_url)
        database.upgrade()
        database.dispose()
    result = run(db_url, "timeline", "INC-7", "--format", "json")
    assert result.exit_code == 1 and "INC-7" in result.output and "No database" not in result.output
    assert run(db_url, "wellbeing", "--format", "json").exit_code == 0
