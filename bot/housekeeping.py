"""Trimming bookkeeping rows that have done their job (never timeline events, timers or pages)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from .clocks.now import utcnow
from .db.engine import Database
from .db.models import SlackEventSeen, Task

KEEP_TASKS = timedelta(days=7)  # finished outbox rows, kept a week for debugging
KEEP_EVENT_IDS = timedelta(days=1)  # Slack stops retrying an event within hours


def purge(db: Database) -> tuple[int, int]:
    now = utcnow()
    with db.tx() as session:
        tasks = session.execute(delete(Task).where(Task.state == "done", Task.done_at < now - KEEP_TASKS)).rowcount
        seen = session.execute(delete(SlackEventSeen).where(SlackEventSeen.seen_at < now - KEEP_EVENT_IDS)).rowcount
    return tasks, seen


def purge_wellbeing(db: Database, retention: timedelta) -> int:
    """Exposure figures are personal data: ledger rows, breaks and sent nudges older than
    `wellbeing.retention` are deleted."""
    from .wellbeing import purge_expired

    return purge_expired(db, retention)
