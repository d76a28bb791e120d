"""Responder hours: time on incidents, counted from the timeline the way incident.io counts it.

A person's activity on an incident is every timeline event they are the actor of (commands,
clicks, steps, notes, assignments, acknowledgements). Each one counts as 10 minutes of work
after it; a next one within 20 minutes of the last counts the time between them as continuous
work too (incident.io's published rule: 10:11 and 10:15 make 14 minutes). A person's time on
several incidents at once is counted once (never more than an hour in an hour).

Hours are split by the person's own clock (their Slack time zone; UTC when Slack does not say):
working 08–19, late 19–23, night 23–08. No table of its own: everything is read from the
timeline. The viewing ledger's durations are NOT used here, so a role's hours in a review say
nothing about what anyone viewed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from .config_types import USER_ID
from .db.models import TimelineEvent

CONTINUOUS = timedelta(minutes=20)  # activity this close to the last is one stretch of work
AFTER = timedelta(minutes=10)  # each activity counts this much work after it
# Local hours where each band starts: working 08–19, late 19–23, night 23–08.
BANDS = ((8, "working"), (19, "late"), (23, "night"))

Span = tuple[datetime, datetime]


@dataclass
class Hours:
    """Seconds of work by band."""

    working: float = 0.0
    late: float = 0.0
    night: float = 0.0

    @property
    def total(self) -> float:
        return self.working + self.late + self.night

    def __add__(self, other: Hours) -> Hours:
        return Hours(self.working + other.working, self.late + other.late, self.night + other.night)

    def in_hours(self, digits: int = 1) -> dict[str, float]:
        return {"working": round(self.working / 3600, digits), "late": round(self.late / 3600, digits),
                "night": round(self.night / 3600, digits), "total": round(self.total / 3600, digits)}

    def text(self) -> dict[str, str]:
        """`2h 05m`, `14m`, `0m` per band, for people."""
        return {band: fmt(getattr(self, band)) for band in ("working", "late", "night", "total")}


def fmt(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60}h {minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def is_person(actor: str | None) -> bool:
    """A Slack user (not the bot, an API token `api:NAME` or a timer)."""
    return bool(actor) and USER_ID.match(actor) is not None


def merge(spans: Iterable[Span]) -> list[Span]:
    out: list[Span] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def spans(times: Iterable[datetime]) -> list[Span]:
    """The stretches of work that one person's activity on one incident stands for."""
    ordered = sorted(_utc(t) for t in times)
    raw: list[Span] = []
    for n, at in enumerate(ordered):
        raw.append((at, at + AFTER))
        if n + 1 < len(ordered) and ordered[n + 1] - at <= CONTINUOUS:
            raw.append((at, ordered[n + 1]))
    return merge(raw)


def clip(work: Iterable[Span], start: datetime, end: datetime) -> list[Span]:
    return [(max(a, start), min(b, end)) for a, b in work if min(b, end) > max(a, start)]


def _band(hour: int) -> str:
    name = BANDS[-1][1]  # before 08: still the night that began at 23
    for first, band in BANDS:
        if hour >= first:
            name = band
    return name


def _next_boundary(local: datetime, tz: ZoneInfo) -> datetime:
    """The next local 08:00, 19:00 or 23:00 after `local`, in UTC."""
    for day in (0, 1):
        base = local.date() + timedelta(days=day)
        for hour, _ in BANDS:
            candidate = datetime(base.year, base.month, base.day, hour, tzinfo=tz).astimezone(UTC)
            if candidate > local.astimezone(UTC):
                return candidate
    raise AssertionError("unreachable: a band starts every day")


def split(work: Iterable[Span], tz: ZoneInfo) -> Hours:
    """The spans' seconds by band of the person's local clock (DST-safe: cut at real instants)."""
    out = Hours()
    for start, end in work:
        cursor = start
        while cursor < end:
            local = cursor.astimezone(tz)
            stop = min(end, _next_boundary(local, tz))
            band = _band(local.hour)
            setattr(out, band, getattr(out, band) + (stop - cursor).total_seconds())
            cursor = stop
    return out


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


# -- from the database ---------------------------------------------------------------------------

def activity(session: Session, start: datetime, end: datetime, *, incident_id: int | None = None,
             users: Iterable[str] | None = None) -> dict[str, dict[int, list[datetime]]]:
    """{person: {incident: [times]}} of the events people acted in, within [start - 20m, end) (a
    stretch that began before `start` still counts for its part inside)."""
    query = select(TimelineEvent.actor, TimelineEvent.incident_id, TimelineEvent.at).where(
        TimelineEvent.at >= start - CONTINUOUS - AFTER, TimelineEvent.at < end, TimelineEvent.actor.is_not(None))
    if incident_id is not None:
        query = query.where(TimelineEvent.incident_id == incident_id)
    if users is not None:
        query = query.where(TimelineEvent.actor.in_(list(users)))
    out: dict[str, dict[int, list[datetime]]] = {}
    for actor, incident, at in session.execute(query):
        if is_person(actor):
            out.setdefault(actor, {}).setdefault(incident, []).append(_utc(at))
    return out


def work_of(per_incident: dict[int, list[datetime]]) -> list[Span]:
    """One person's work across incidents, counted once where incidents overlap."""
    return merge(span for times in per_incident.values() for span in spans(times))


def person_hours(session: Session, user: str, tz: ZoneInfo, start: datetime, end: datetime) -> Hours:
    acts = activity(session, start, end, users=[user]).get(user, {})
    return split(clip(work_of(acts), start, end), tz)


def people_hours(session: Session, start: datetime, end: datetime,
                 zone_of: Callable[[str], ZoneInfo]) -> dict[str, Hours]:
    """Every person who acted in [start, end): their hours in it."""
    return hours_of(activity(session, start, end), start, end, zone_of)


def hours_of(acts: dict[str, dict[int, list[datetime]]], start: datetime, end: datetime,
             zone_of: Callable[[str], ZoneInfo]) -> dict[str, Hours]:
    """`activity`'s answer as hours per person (no database: time zones may ask Slack)."""
    return {user: split(clip(work_of(per_incident), start, end), zone_of(user))
            for user, per_incident in sorted(acts.items())}


@dataclass(frozen=True)
class RoleHours:
    role: str
    people: int
    hours: Hours


def role_hours(events: Iterable[tuple[str | None, datetime]], roles_of: dict[str, list[str]],
               zone_of: Callable[[str], ZoneInfo], *, others: str = "Other participants") -> list[RoleHours]:
    """One incident's hours per role (a person with two roles counts in each), then a row for
    people without a role and a total that counts each person once. Never per person."""
    times: dict[str, list[datetime]] = {}
    for actor, at in events:
        if is_person(actor):
            times.setdefault(actor, []).append(_utc(at))
    per_person = {user: split(spans(ts), zone_of(user)) for user, ts in times.items()}
    groups: dict[str, list[str]] = {}
    for user in per_person:
        for role in roles_of.get(user) or [others]:
            groups.setdefault(role, []).append(user)
    order = sorted(groups, key=lambda g: (g == others, g))
    rows = [RoleHours(g, len(groups[g]), sum((per_person[u] for u in groups[g]), Hours())) for g in order]
    if rows:
        rows.append(RoleHours("All responders", len(per_person), sum(per_person.values(), Hours())))
    return rows
