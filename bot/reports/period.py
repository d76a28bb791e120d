"""The period of a report: whole UTC days, ``YYYY-MM-DD`` to ``YYYY-MM-DD`` inclusive."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from ..errors import InvalidInput

DEFAULT_DAYS = 30


@dataclass(frozen=True)
class Period:
    first: date  # the first day counted
    last: date  # the last day counted (inclusive)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), UTC)

    @property
    def end(self) -> datetime:
        """The first instant after the period (exclusive)."""
        return datetime.combine(self.last + timedelta(days=1), time(), UTC)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def parse_day(text: str | None, *, field: str) -> date | None:
    if text is None or not str(text).strip():
        return None
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError:
        raise InvalidInput(f"{field}: {str(text)[:40]!r} is not a date; use YYYY-MM-DD (UTC).",
                           {field: "Use YYYY-MM-DD."}) from None


def period_of(first: str | date | None, last: str | date | None, today: date) -> Period:
    """The period from ``first`` to ``last`` (strings or dates); by default the last 30 days
    up to and including ``today`` (UTC). A missing end counts 30 days from the other one."""
    start = first if isinstance(first, date) else parse_day(first, field="from")
    end = last if isinstance(last, date) else parse_day(last, field="to")
    if end is None:
        end = min(today, start + timedelta(days=DEFAULT_DAYS - 1)) if start is not None else today
    if start is None:
        start = end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise InvalidInput(f"The period starts ({start}) after it ends ({end}).", {"from": "After `to`."})
    if (end - start).days > 3660:
        raise InvalidInput("A report covers at most ten years.", {"from": "Too far back."})
    return Period(start, end)
