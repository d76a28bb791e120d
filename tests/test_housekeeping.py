from __future__ import annotations

from datetime import timedelta

from freezegun import freeze_time

from bot.clocks.now import utcnow
from bot.db.engine import Database
from bot.db.models import SlackEventSeen, Task
from bot.housekeeping import purge


def test_purge_keeps_recent_and_unfinished_rows(db_url):
    db = Database(db_url)
    db.upgrade()
    try:
        now = utcnow()
        with db.tx() as session:
            for state, done in (("done", now - timedelta(days=8)), ("done", now - timedelta(days=1)),
                                ("dead", now - timedelta(days=30)), ("pending", None)):
                session.add(Task(kind="post", payload={}, state=state, not_before=now, created_at=now, done_at=done))
            session.add(SlackEventSeen(event_id="Ev1", seen_at=now - timedelta(days=2)))
            session.add(SlackEventSeen(event_id="Ev2", seen_at=now))
        with freeze_time(now):
            assert purge(db) == (1, 1)
        with db.read() as session:
            assert sorted(t.state for t in session.query(Task)) == ["dead", "done", "pending"]
            assert [e.event_id for e in session.query(SlackEventSeen)] == ["Ev2"]
    finally:
        db.dispose()
