"""`Idempotency-Key` for the API: the first answer to a token's key is kept for 24 hours and
given again, with its status, to a repeat; the same key with another body is a conflict."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .clocks.now import utcnow
from .db.engine import Database
from .db.models import IdempotencyKey
from .errors import DomainError

WINDOW = timedelta(hours=24)
# A first request still unanswered after this died with its process: a repeat takes its place.
ABANDONED = timedelta(minutes=2)


class KeyConflict(DomainError):
    """The key was used with another request, or its first request is still being answered."""


@dataclass(frozen=True)
class Replay:
    status: int
    body: Any


def begin(db: Database, token: str, key: str, request_hash: str) -> Replay | None:
    """None: this request is the key's first (answer it, then `finish`); a Replay: answer that."""
    now = utcnow()
    with db.tx() as session:
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        first = session.execute(insert(IdempotencyKey).values(
            token=token, key=key, request_hash=request_hash, status=None, body=None, created_at=now)
            .on_conflict_do_nothing(index_elements=["token", "key"]).returning(IdempotencyKey.id)).scalar()
        if first is not None:
            return None
        row = session.scalars(select(IdempotencyKey).where(IdempotencyKey.token == token,
                                                           IdempotencyKey.key == key)).one()
        if row.created_at < now - WINDOW:  # a key from over a day ago: this request is its first now
            row.request_hash, row.status, row.body, row.created_at = request_hash, None, None, now
            return None
        if row.request_hash != request_hash:
            raise KeyConflict("This Idempotency-Key was used with a different request in the last 24 hours; "
                              "use a new key for a new request.")
        if row.status is None:
            if now - row.created_at < ABANDONED:
                raise KeyConflict("The first request with this Idempotency-Key is still being answered; "
                                  "try again in a moment.")
            row.created_at = now
            return None
        return Replay(row.status, row.body)


def finish(db: Database, token: str, key: str, status: int, body: Any) -> None:
    with db.tx() as session:
        session.execute(update(IdempotencyKey).where(IdempotencyKey.token == token, IdempotencyKey.key == key)
                        .values(status=status, body=body))


def abandon(db: Database, token: str, key: str) -> None:
    """The first request failed in a way a repeat may not (an unexpected error, a busy limit)."""
    with db.tx() as session:
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.token == token, IdempotencyKey.key == key,
                                                     IdempotencyKey.status.is_(None)))


def purge(db: Database) -> int:
    with db.tx() as session:
        return session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - WINDOW)).rowcount
