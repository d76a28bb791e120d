"""Tokens of the HTTP API: made and revoked by an operator (`safeguard token …`), checked on
every request. Only a token's SHA-256 is stored; the token is shown once, when it is made.

A token acts as `api:NAME` on timelines; what it may do is its scopes (see bot.policy)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .clocks.now import utcnow
from .db.engine import Database
from .db.models import ApiToken
from .errors import InvalidInput, NotFound

SCOPES = ("declare", "read", "update", "exposure")
ACTOR_PREFIX = "api:"
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,27}$")
PREFIX = "sgt_"  # recognisable in a secret scanner's rules


@dataclass(frozen=True)
class TokenInfo:
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None

    @property
    def actor(self) -> str:
        return ACTOR_PREFIX + self.name


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def is_api_actor(actor: str | None) -> bool:
    return bool(actor) and actor.startswith(ACTOR_PREFIX)


def _check(name: str, scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    if not NAME.match(name or ""):
        raise InvalidInput(f"{name!r} is not a token name: 1–28 lowercase letters, digits, '-' or '_', "
                           "starting with a letter or digit.", {"name": "bad name"})
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise InvalidInput(f"Scopes are {', '.join(SCOPES)}; give at least one with --scope"
                           + (f" (unknown: {', '.join(unknown)})." if unknown else "."), {"scope": "unknown"})
    return tuple(dict.fromkeys(scopes))


def create(db: Database, name: str, scopes: list[str] | tuple[str, ...]) -> str:
    """Make a token; returns it (the only time it is seen)."""
    scopes = _check(name, scopes)
    token = PREFIX + secrets.token_urlsafe(32)
    try:
        with db.tx() as session:
            session.add(ApiToken(name=name, token_hash=digest(token), scopes=list(scopes), created_at=utcnow()))
    except IntegrityError:
        raise InvalidInput(f"A token named {name!r} exists already (names are never reused, even revoked).",
                           {"name": "taken"}) from None
    return token


def listing(db: Database) -> list[TokenInfo]:
    with db.read() as session:
        return [TokenInfo(t.name, tuple(t.scopes), t.created_at, t.revoked_at)
                for t in session.scalars(select(ApiToken).order_by(ApiToken.name))]


def revoke(db: Database, name: str) -> TokenInfo:
    with db.tx() as session:
        row = session.scalars(select(ApiToken).where(ApiToken.name == name)).first()
        if row is None:
            raise NotFound(f"There is no token named {name!r} (`safeguard token list`).")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        return TokenInfo(row.name, tuple(row.scopes), row.created_at, row.revoked_at)


def authenticate(db: Database, token: str) -> TokenInfo | None:
    """The live token this is, or None (unknown, or revoked)."""
    if not token or len(token) > 200:
        return None
    with db.read() as session:
        row = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest(token))).first()
        if row is None or row.revoked_at is not None:
            return None
        return TokenInfo(row.name, tuple(row.scopes), row.created_at, row.revoked_at)


def scopes_of(db: Database, actor: str) -> tuple[str, ...] | None:
    """The scopes of the live token acting as `actor` (`api:NAME`); None when revoked or unknown."""
    name = actor[len(ACTOR_PREFIX):]
    with db.read() as session:
        row = session.scalars(select(ApiToken).where(ApiToken.name == name)).first()
        if row is None or row.revoked_at is not None:
            return None
        return tuple(row.scopes)
