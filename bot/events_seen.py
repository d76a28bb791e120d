"""Slack retries events it did not see acknowledged; each event_id is handled once."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite

from .clocks.now import utcnow
from .core import Core
from .db.models import SlackEventSeen


def first_time(core: Core, event_id: str) -> bool:
    if not event_id:
        return True
    with core.db.tx() as session:
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        inserted = session.execute(
            insert(SlackEventSeen).values(event_id=event_id, seen_at=utcnow())
            .on_conflict_do_nothing(index_elements=["event_id"]).returning(SlackEventSeen.event_id)
        ).scalar()
        return inserted is not None
