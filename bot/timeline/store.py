"""Appending to and reading an incident's timeline, inside the caller's transaction."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import and_, func, select
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
    bulk = session.info.get("bulk")
    heads = bulk["heads"] if bulk is not None else {}
    if incident_id in heads:  # a batch (see bulk_heads): the head was read once for the batch
        seq, prev = heads[incident_id]
        seq += 1
    else:
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
    if bulk is not None:
        # In a batch the events are inserted together at the next flush (one multi-row INSERT);
        # the incident's lock is held, so the head kept here is the chain's head.
        heads[incident_id] = (seq, event.hash)
    else:
        session.flush()
    return event


def bulk_heads(session: Session, incident_ids) -> dict[int, tuple[int, str]]:
    """The chain heads (last seq, hash) of many incidents in one query. Only under their locks,
    in a transaction without savepoints (a rolled-back savepoint would leave a stale head)."""
    wanted = sorted(set(incident_ids))
    heads: dict[int, tuple[int, str]] = dict.fromkeys(wanted, (0, GENESIS))
    if not wanted:
        return heads
    last = (select(TimelineEvent.incident_id, func.max(TimelineEvent.seq).label("seq"))
            .where(TimelineEvent.incident_id.in_(wanted)).group_by(TimelineEvent.incident_id).subquery())
    for incident_id, seq, hash_ in session.execute(
            select(TimelineEvent.incident_id, TimelineEvent.seq, TimelineEvent.hash)
            .join(last, and_(TimelineEvent.incident_id == last.c.incident_id, TimelineEvent.seq == last.c.seq))):
        heads[incident_id] = (seq, hash_)
    return heads


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
