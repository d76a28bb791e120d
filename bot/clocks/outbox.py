"""The outbox: work for Slack or a pager, written in the same transaction as the change that
asks for it, and carried out afterwards by the dispatcher."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ..db.models import Task
from ..timeline.store import lock_incident
from .now import utcnow

# Claim order of the outbox (lowest first, then the oldest due). Slack's limits make the queue
# wait under a burst: a page or a legal clock's reminder must not wait behind checklist redraws.
URGENT, NORMAL, BACKGROUND = 0, 1, 2
PRIORITY = {
    "page_notify": URGENT, "page_post": URGENT,
    "refresh_checklist": BACKGROUND, "topic": BACKGROUND, "bookmarks": BACKGROUND, "publish_home": BACKGROUND,
    "upload_timeline": BACKGROUND, "close_channel": BACKGROUND,
}


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    incident_id: int | None = None,
    not_before: datetime | None = None,
    dedup_key: str | None = None,
    priority: int | None = None,
) -> bool:
    """Add a task; False when a task still pending under the same dedup_key absorbed it.
    `priority`: see PRIORITY (by default the kind's)."""
    now = utcnow()
    values = {
        "kind": kind,
        "priority": PRIORITY.get(kind, NORMAL) if priority is None else priority,
        "payload": payload or {},
        "incident_id": incident_id,
        "not_before": not_before or now,
        "created_at": now,
        "state": "pending",
        "attempts": 0,
        "dedup_key": dedup_key,
    }
    if dedup_key is None:
        session.add(Task(**values))
        if session.info.get("bulk") is None:
            session.flush()  # (in a batch: inserted with the others at the next flush)
        return True
    if incident_id is not None:
        # The incident's row lock first, as every writer of an incident takes it: a transaction
        # that held this dedup row and then waited for the incident would deadlock with one that
        # held the incident and then waited on the same dedup key (seen on PostgreSQL).
        lock_incident(session, incident_id)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # RETURNING, not rowcount: psycopg's rowcount is not reliable for INSERT … ON CONFLICT here.
    inserted = session.execute(
        insert(Task).values(**values).on_conflict_do_nothing(index_elements=["dedup_key"]).returning(Task.id)
    ).scalar()
    return inserted is not None


def enqueue_folded(session: Session, kind: str, rows: list[dict[str, Any]]) -> set[str]:
    """Many tasks with dedup keys in one statement (each row: payload, incident_id, not_before,
    dedup_key); returns the keys inserted (the others were absorbed by a pending task). The
    caller holds the incidents' locks (see enqueue)."""
    now = utcnow()
    values = [{"kind": kind, "priority": PRIORITY.get(kind, NORMAL), "created_at": now, "state": "pending",
               "attempts": 0, **row} for row in rows]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return set(session.scalars(
        insert(Task).values(values).on_conflict_do_nothing(index_elements=["dedup_key"]).returning(Task.dedup_key)))


def pending_count(session: Session) -> int:
    return len(session.scalars(select(Task.id).where(Task.state.in_(("pending", "running")))).all())


def to_incident_channel(session: Session, incident, text: str, *, event: dict[str, Any] | None = None,
                        priority: int = NORMAL) -> None:
    """A message for the incident's channel. When the channel does not exist yet (Slack slow at
    declaration), the task waits for it instead of being dropped; if the channel cannot be made
    at all, it goes to where the incident was declared (see tasks.channel_post_task)."""
    payload: dict[str, Any] = {"text": text, **({"event": event} if event else {})}
    if incident.channel_id:
        enqueue(session, "post", {"channel": incident.channel_id, **payload}, incident_id=incident.id,
                priority=priority)
    else:
        enqueue(session, "channel_post", {"incident": incident.id, **payload}, incident_id=incident.id,
                priority=priority)
