"""The one source of 'now' (freezegun moves it in tests)."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
