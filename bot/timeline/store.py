"""Appending to and reading an incident's timeline, inside the caller's transaction."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..clocks.now import utcnow
from ..db.models import Incident, TimelineEvent
from .chain import GENESIS, compute_hash, format_at


def lock_incident(session: Session, incident_id: int) -> None:
    """Serialise writers of one incident (PostgreSQL row lock; SQLite's BEGIN IMMEDIATE already
    serialises). Every transaction that changes an incident takes this lock first; taking it
    again in the same transaction costs nothing (each transaction has its own session)."""
    locked = session.info.setdefault("locked_incidents", set())
    if incident_id in locked:
        return
    session.execute(select(Incident.id).where(Incident.id == incident_id).with_for_update())
    locked.add(incident_id)


def append(
    session: Session,
    incident_id: int,
    kind: str,
    text: str,
    *,
    actor: str | None = None,
    data: dict[str, Any] | None = None,
) -> TimelineEvent:
    lock_incident(session, incident_id)
    last = session.execute(
        select(TimelineEvent.seq, TimelineEvent.hash)
        .where(TimelineEvent.incident_id == incident_id)
        .order_by(TimelineEvent.seq.desc())
        .limit(1)
    ).first()
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    at = utcnow()
    # Round-trip through JSON so what we hash is exactly what the database gives back.
    data = json.loads(json.dumps(data or {}))
    body = {"seq": seq, "at": format_at(at), "kind": kind, "actor": actor, "text": text, "data": data}
    event = TimelineEvent(
        incident_id=incident_id, seq=seq, at=at, kind=kind, actor=actor, text=text, data=data,
        prev_hash=prev, hash=compute_hash(prev, body),
    )
    session.add(event)
    session.flush()
    return event


def as_contract(event: TimelineEvent) -> dict[str, Any]:
    """The timeline JSON contract of DESIGN.md."""
    return {
        "seq": event.seq,
        "at": format_at(event.at),
        "kind": event.kind,
        "actor": event.actor,
        "text": event.text,
        "data": event.data,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def events(session: Session, incident_id: int) -> list[TimelineEvent]:
    return list(
        session.scalars(
            select(TimelineEvent).where(TimelineEvent.incident_id == incident_id).order_by(TimelineEvent.seq)
        )
    )
