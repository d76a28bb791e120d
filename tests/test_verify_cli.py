"""`safeguard verify` and `safeguard timeline` on an incident worked through the sandbox: the chain
verifies, then every kind of change made directly in the database is caught and named."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from bot.timeline import chain, export
from runtime.cli import main
from tests.support import DEMO_CONFIG

pytestmark = pytest.mark.e2e

LEAD, SPEC = "U0LEAD001", "U0SPEC001"
SAFEGUARD = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "safeguard"


def cli_env(db_url: str) -> dict[str, str]:
    return {"DATABASE_URL": db_url, "SAFEGUARD_CONFIG": str(DEMO_CONFIG)}


def safeguard(db_url: str, *args: str):
    return CliRunner().invoke(main, list(args), env=cli_env(db_url), catch_exceptions=False)


def worked_incident(running) -> list[dict]:
    assert running.driver.command(LEAD, "declare csam-report Hash match on upload 8812").ok
    channel = running.provisioned(1)
    running.settle()
    for user, command in [
        (SPEC, "done confirm case_id=CASE-881 category=A1 human_viewed=all"),
        (LEAD, "note Ünïcode, \"quotes\", <angle> & a\nsecond line for CASE-881"),
        (LEAD, "done ncmec-report report_id=123456"),
    ]:
        assert running.driver.command(user, command, channel=channel.id).ok
    running.settle()
    return running.timeline(1)


class Sql:
    """Someone with write access to the database, bypassing the bot."""

    def __init__(self, db_url: str) -> None:
        self.engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))

    def run(self, sql: str, **params) -> int:
        with self.engine.begin() as conn:
            return conn.execute(text(sql), params).rowcount

    def row(self, seq: int) -> dict:
        with self.engine.connect() as conn:
            return dict(conn.execute(text("SELECT * FROM timeline_events WHERE incident_id = 1 AND seq = :seq"),
                                     {"seq": seq}).mappings().one())

    def close(self) -> None:
        self.engine.dispose()


def assert_intact(db_url: str, events: list[dict]) -> None:
    result = safeguard(db_url, "verify", "INC-1")
    assert result.exit_code == 0, result.output
    head = events[-1]
    assert result.stdout.strip() == f"INC-1: {len(events)} events, hash chain intact (head {head['seq']}:{head['hash']})."


def assert_altered(db_url: str, seq: int, *expected: str) -> str:
    result = safeguard(db_url, "verify", "1")
    assert result.exit_code == 1, result.output
    assert f"INC-1: ALTERED at event #{seq}:" in result.stderr
    for fragment in expected:
        assert fragment in result.stderr, result.stderr
    return result.stderr


def test_verify_passes_then_names_each_altered_event(running, db_url):
    events = worked_incident(running)
    assert len(events) > 20 and chain.verify(events).ok
    assert_intact(db_url, events)
    note = next(e for e in events if e["kind"] == "note")
    step = next(e for e in events if e["kind"] == "step_done" and e["data"]["step"] == "ncmec-report")
    middle = events[len(events) // 2]
    sql = Sql(db_url)
    try:
        # the text of a note
        original = sql.row(note["seq"])
        assert sql.run("UPDATE timeline_events SET text = :t WHERE incident_id = 1 AND seq = :s",
                       t=note["text"].replace("CASE-881", "CASE-882"), s=note["seq"]) == 1
        assert_altered(db_url, note["seq"], "hash does not match the event's contents", f"#{note['seq']}",
                       "note by U0LEAD001")
        sql.run("UPDATE timeline_events SET text = :t WHERE incident_id = 1 AND seq = :s",
                t=original["text"], s=note["seq"])
        assert_intact(db_url, events)

        # the data of a step: another report id
        data = json.dumps({**step["data"], "values": {"report_id": "999999"}})
        sql.run("UPDATE timeline_events SET data = :d WHERE incident_id = 1 AND seq = :s", d=data, s=step["seq"])
        assert_altered(db_url, step["seq"], "step_done by U0LEAD001")
        sql.run("UPDATE timeline_events SET data = :d WHERE incident_id = 1 AND seq = :s",
                d=json.dumps(step["data"]), s=step["seq"])
        assert_intact(db_url, events)

        # the kind of an event
        sql.run("UPDATE timeline_events SET kind = 'step_skipped' WHERE incident_id = 1 AND seq = :s", s=step["seq"])
        assert_altered(db_url, step["seq"], "step_skipped")
        sql.run("UPDATE timeline_events SET kind = 'step_done' WHERE incident_id = 1 AND seq = :s", s=step["seq"])
        assert_intact(db_url, events)

        # the time and the actor, rewritten together with a recomputed hash: caught at the next event
        forged = {**events[2], "actor": "U0OUTSID1"}
        sql.run("UPDATE timeline_events SET actor = 'U0OUTSID1', hash = :h WHERE incident_id = 1 AND seq = 3",
                h=chain.compute_hash(forged["prev_hash"], forged))
        assert_altered(db_url, 4, "prev_hash does not match the previous event")
        sql.run("UPDATE timeline_events SET actor = :a, hash = :h WHERE incident_id = 1 AND seq = 3",
                a=events[2]["actor"], h=events[2]["hash"])
        assert_intact(db_url, events)

        # a row deleted from the middle
        removed = sql.row(middle["seq"])
        assert sql.run("DELETE FROM timeline_events WHERE incident_id = 1 AND seq = :s", s=middle["seq"]) == 1
        assert_altered(db_url, middle["seq"] + 1, f"expected event #{middle['seq']}, found #{middle['seq'] + 1}")

        # the console script itself exits 1 too (on one database is enough)
        if db_url.startswith("sqlite") and SAFEGUARD.exists():
            proc = subprocess.run([str(SAFEGUARD), "verify", "INC-1"], capture_output=True, text=True, timeout=60,
                                  env={**os.environ, **cli_env(db_url)})
            assert proc.returncode == 1, proc
            assert f"ALTERED at event #{middle['seq'] + 1}" in proc.stderr

        sql.run("INSERT INTO timeline_events (id, incident_id, seq, at, kind, actor, text, data, prev_hash, hash) "
                "VALUES (:id, :incident_id, :seq, :at, :kind, :actor, :text, :data, :prev_hash, :hash)",
                **{**removed, "data": json.dumps(removed["data"]) if not isinstance(removed["data"], str)
                   else removed["data"]})
        assert_intact(db_url, events)
    finally:
        sql.close()


def test_an_anchor_from_the_channel_catches_events_removed_from_the_end(running, db_url):
    worked_incident(running)
    channel = running.provisioned(1)
    assert running.driver.command(LEAD, "close", channel=channel.id).ok
    running.settle()
    [closing] = [m for m in running.ws.messages(channel.id) if m.text.startswith(":lock: INC-1 closed")]
    posted = closing.text.split("Timeline anchor: `")[1].split("`")[0]
    events = running.timeline(1)
    closed = next(e for e in events if e["kind"] == "closed")
    assert posted == f"{closed['seq']}:{closed['hash']}" == chain.anchor(closed)

    held = safeguard(db_url, "verify", "INC-1", "--anchor", posted, "--anchor", chain.anchor(events[0]))
    assert held.exit_code == 0 and "2 anchor(s) matched" in held.stdout

    # someone deletes the newest events (the close and what followed): the chain alone still holds
    sql = Sql(db_url)
    try:
        sql.run("DELETE FROM timeline_events WHERE incident_id = 1 AND seq >= :s", s=closed["seq"])
    finally:
        sql.close()
    assert safeguard(db_url, "verify", "INC-1").exit_code == 0
    caught = safeguard(db_url, "verify", "INC-1", "--anchor", posted)
    assert caught.exit_code == 1
    assert (f"ALTERED at event #{closed['seq']}: the timeline ends at #{closed['seq'] - 1}"
            in caught.stderr) and "removed from its end" in caught.stderr

    forged = safeguard(db_url, "verify", "INC-1", "--anchor", f"1:{'0' * 64}")
    assert forged.exit_code == 1 and "hash differs from the anchor" in forged.stderr
    for bad in ("twelve:abc", "\u00b2:" + "0" * 64):
        malformed = safeguard(db_url, "verify", "INC-1", "--anchor", bad)
        assert malformed.exit_code == 2 and "expected SEQ:HASH" in malformed.stderr


def test_timeline_command_prints_the_contract(running, db_url):
    events = worked_incident(running)

    as_json = safeguard(db_url, "timeline", "INC-1", "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    printed = json.loads(as_json.stdout)
    assert printed == events
    assert all(list(e) == ["seq", "at", "kind", "actor", "text", "data", "prev_hash", "hash"] for e in printed)
    assert chain.verify(printed).ok

    as_csv = safeguard(db_url, "timeline", "1", "--format", "csv")
    assert as_csv.exit_code == 0 and export.parse_csv(as_csv.stdout.removesuffix("\n")) == events

    review = safeguard(db_url, "timeline", "INC-1")
    assert review.exit_code == 0 and review.stdout.startswith("# INC-1: Hash match on upload 8812")
    assert "Report 123456" in review.stdout and "met on time" in review.stdout

    html = safeguard(db_url, "timeline", "INC-1", "--format", "html")
    assert html.exit_code == 0 and html.stdout.startswith("<!DOCTYPE html>")

    missing = safeguard(db_url, "timeline", "INC-7", "--format", "json")
    assert missing.exit_code == 1 and "There is no incident INC-7" in missing.stderr
    bad = safeguard(db_url, "verify", "seven")
    assert bad.exit_code == 2 and "is not an incident" in bad.stderr
    none = safeguard(db_url, "verify", "INC-7")
    assert none.exit_code == 1 and "INC-7 has no timeline" in none.stderr
