"""Responder wellbeing: a private exposure ledger, limits, breaks and private nudges.

Two things are written when someone logs what they viewed (`/incident viewed 25m items=40`):
the custody fact on the incident's timeline (`content_viewed`: who, when, how many items; no
duration, no kind) and a private ledger row (person, incident, duration, kind, time). Ledger
figures are personal data: only the person (and the stewards, through `safeguard wellbeing`)
read them; they never reach a channel, a timeline export, `/metrics` or the logs, and
housekeeping deletes them after `wellbeing.retention`.

Days and weeks are the person's own (their Slack time zone; UTC when Slack does not say): a
viewing that crosses midnight counts towards each day for the part that fell in it. A limit is
reached at or above its value. Exposure "in a row" is what was viewed since the end of the last
break, or since the start of the person's day if they took none today.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .clocks.now import utcnow
from .clocks.outbox import enqueue
from .core import Core
from .db.engine import Database
from .db.models import Exposure, Incident, RoleAssignment, WellbeingBreak, WellbeingNudge
from .durations import parse_duration
from .errors import Forbidden, InvalidInput, NotFound
from .hours import Hours, person_hours
from .incidents import ref
from .outcomes import Outcome
from .playbooks import VIEWING_KEYS
from .policy import mutation
from .timeline.store import append, lock_incident
from .tokens import is_api_actor

KINDS = ("image", "video", "audio", "text")
MAX_VIEWING = timedelta(hours=12)  # one log entry; longer is a typo (write two entries)
MAX_BREAK = timedelta(hours=12)
MAX_ITEMS = 100_000
NEAR = 0.8  # "the daily limit is near"


# -- time ---------------------------------------------------------------------------------------

def tz_of(core: Core, user: str) -> ZoneInfo:
    """The person's time zone as Slack has it; UTC when Slack does not say (or cannot be asked)."""
    name = None
    if core.gateway is not None:
        try:
            name = (core.gateway.user(user) or {}).get("tz")
        except Exception:  # noqa: BLE001 (Slack unreachable: count in UTC rather than fail)
            name = None
    try:
        return ZoneInfo(name) if isinstance(name, str) and name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def day_bounds(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The person's local day holding `now`, in UTC."""
    local = now.astimezone(tz)
    start = datetime(local.year, local.month, local.day, tzinfo=tz)
    end = datetime.combine(start.date() + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def week_bounds(now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The person's local week (Monday to Sunday) holding `now`, in UTC."""
    local = now.astimezone(tz)
    monday = local.date() - timedelta(days=local.weekday())
    start = datetime.combine(monday, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(monday + timedelta(days=7), datetime.min.time(), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def local_day(now: datetime, tz: ZoneInfo) -> str:
    return now.astimezone(tz).date().isoformat()


def viewed_seconds(session: Session, user: str, start: datetime, end: datetime) -> int:
    """Seconds `user` viewed content within [start, end): each entry is the span that ended at its
    `at`, counted for the part of it inside the window."""
    rows = session.execute(select(Exposure.at, Exposure.seconds).where(
        Exposure.user_id == user, Exposure.at > start, Exposure.at < end + MAX_VIEWING)).all()
    total = 0.0
    for at, seconds in rows:
        began = at - timedelta(seconds=seconds)
        overlap = (min(at, end) - max(began, start)).total_seconds()
        total += max(0.0, overlap)
    return round(total)


def human(seconds: float | timedelta) -> str:
    """`2h 05m`, `40m`, `30s`: a figure for the person's own eyes."""
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


# -- a person's standing ------------------------------------------------------------------------

@dataclass
class Figures:
    user: str
    tz: str
    today: int  # seconds viewed in the person's day
    week: int
    in_a_row: int  # since the end of the last break (or the start of the day)
    streak_start: datetime
    last_break: WellbeingBreak | None
    on_break_until: datetime | None
    daily_limit: int
    weekly_limit: int
    break_every: int

    @property
    def at_daily_limit(self) -> bool:
        return self.today >= self.daily_limit

    @property
    def at_weekly_limit(self) -> bool:
        return self.week >= self.weekly_limit

    @property
    def break_due(self) -> bool:
        return self.in_a_row >= self.break_every and self.on_break_until is None


def figures(core: Core, session: Session, user: str, tz: ZoneInfo, now: datetime | None = None) -> Figures:
    now = now or utcnow()
    cfg = core.config.wellbeing
    day_start, day_end = day_bounds(now, tz)
    week_start, week_end = week_bounds(now, tz)
    last = session.scalars(select(WellbeingBreak).where(
        WellbeingBreak.user_id == user, WellbeingBreak.started_at <= now)
        .order_by(WellbeingBreak.started_at.desc(), WellbeingBreak.id.desc()).limit(1)).first()
    on_break_until = last.ends_at if last is not None and last.ends_at > now else None
    streak_start = max(day_start, last.ends_at) if last is not None and last.ends_at <= now else day_start
    in_a_row = 0 if on_break_until else viewed_seconds(session, user, streak_start, now + timedelta(seconds=1))
    return Figures(
        user=user, tz=str(tz), today=viewed_seconds(session, user, day_start, day_end),
        week=viewed_seconds(session, user, week_start, week_end), in_a_row=in_a_row, streak_start=streak_start,
        last_break=last, on_break_until=on_break_until,
        daily_limit=int(cfg.daily_limit.total_seconds()), weekly_limit=int(cfg.weekly_limit.total_seconds()),
        break_every=int(cfg.break_every.total_seconds()))


# -- logging what was viewed --------------------------------------------------------------------

def _duration(text: Any, *, field: str, most: timedelta) -> timedelta:
    if isinstance(text, timedelta):
        value = text
    else:
        try:
            value = parse_duration(str(text or "").strip().lower())
        except ValueError as err:
            raise InvalidInput(f"{str(err)[:1].upper()}{str(err)[1:]}.", {field: str(err)}) from None
    if value <= timedelta(0) or value > most:
        raise InvalidInput(f"At most {human(most)} at a time; log a longer stretch as several entries.", {field: "too long"})
    return value


def parse_items(text: Any) -> int | None:
    if text is None or text == "":
        return None
    value = str(text).strip()
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_ITEMS:
        raise InvalidInput(f"`items` is a whole number from 1 to {MAX_ITEMS:,}.", {"items": "1 to 100000"})
    return int(value)


def parse_kind(text: Any) -> str | None:
    if text is None or text == "":
        return None
    value = str(text).strip().lower()
    if value not in KINDS:
        raise InvalidInput(f"`kind` is one of {', '.join(KINDS)}.", {"kind": ", ".join(KINDS)})
    return value


@mutation("viewed")
def record_viewing(core: Core, incident_id: int, actor: str, duration: Any, items: Any = None,
                   kind: Any = None) -> Outcome:
    """The caller viewed content for the incident for `duration` (ending now). Writes the custody
    fact on the timeline and the duration in the private ledger; nudges privately when a break is
    due or the daily limit is near or reached (and tells the incident's leads, without figures)."""
    return _record(core, actor, actor, incident_id, duration, items, kind)


USER_ID = re.compile(r"^[UW][A-Z0-9]{2,31}$")


@mutation("viewed")
def log_exposure(core: Core, actor: str, user: str, duration: Any, items: Any = None, kind: Any = None,
                 incident_id: int | None = None) -> Outcome:
    """A review tool logs what `user` viewed (`POST /api/v1/exposure`): the same ledger row and
    nudges as `/incident viewed`, and the custody fact when an incident is named. A person may log
    only for themselves; a token with the `exposure` scope logs for the people it reviews for."""
    if not is_api_actor(actor) and user != actor:
        raise Forbidden("You can log only what you viewed yourself.")
    if not isinstance(user, str) or not USER_ID.match(user):
        raise InvalidInput("`user` is a Slack user id (U… or W…).", {"user": "not a Slack user id"})
    return _record(core, user, actor, incident_id, duration, items, kind)


def _record(core: Core, user: str, actor: str, incident_id: int | None, duration: Any, items: Any,
            kind: Any) -> Outcome:
    viewing = Viewing(_duration(duration, field="duration", most=MAX_VIEWING), parse_items(items), parse_kind(kind),
                      tz_of(core, user))
    with core.db.tx() as session:
        if incident_id is not None:
            lock_incident(session, incident_id)
            if session.get(Incident, incident_id) is None:
                raise NotFound(f"There is no incident {ref(incident_id)}.")
        event, seen, sent = log_viewing(core, session, incident_id, user, viewing, actor=actor)
    if sent:
        core.dispatcher.kick()
    return Outcome("content_viewed", incident_id, {
        "seq": event.seq if event is not None else None, "count": viewing.items, "today": human(seen.today),
        "daily_limit": human(seen.daily_limit),
        "at_limit": seen.at_daily_limit, "break_due": seen.break_due})


@dataclass(frozen=True)
class Viewing:
    """A checked viewing entry, ready to be written (with the person's time zone, asked first)."""

    length: timedelta
    items: int | None
    kind: str | None
    tz: ZoneInfo


def log_viewing(core: Core, session: Session, incident_id: int | None, user: str, viewing: Viewing, *,
                actor: str | None = None) -> tuple[Any, Figures, int]:
    """In the caller's transaction (the incident locked): the ledger row, the custody event when an
    incident is named (who, when, how many items; never the duration or the kind; `actor` is who
    logged it: the person, or an API token), and the nudges due.
    Returns (the event or None, the person's figures, how many messages were queued)."""
    now = utcnow()
    session.add(Exposure(user_id=user, incident_id=incident_id, seconds=int(viewing.length.total_seconds()),
                         kind=viewing.kind, items=viewing.items, at=now))
    count, event = viewing.items, None
    if incident_id is not None:
        text = f"<@{user}> viewed content for this incident" + (f" ({count} items)" if count else "")
        event = append(session, incident_id, "content_viewed", text, actor=actor or user,
                       data={"user": user, "items": count})
    session.flush()
    seen = figures(core, session, user, viewing.tz, now)
    return event, seen, _nudge(core, session, seen, incident_id, viewing.tz, now)


NOBODY_VIEWED = ("none", "no")


def split_viewing(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A step's values and the viewing log given with them (`viewed`, `viewed_items`,
    `viewed_kind`): kept apart, so the duration never becomes a step value."""
    given = {k: values[k] for k in VIEWING_KEYS if k in values and str(values[k] or "").strip()}
    return {k: v for k, v in values.items() if k not in VIEWING_KEYS}, given


def prepare_viewing(core: Core, step: Any, values: dict[str, str], given: dict[str, Any], actor: str) -> Viewing:
    """Check the viewing log given with a step's values (`values` already cleaned). Errors name
    the form's inputs (`viewed`, `viewed_items`, `viewed_kind`)."""
    question = step.viewing_field
    if question is None:
        raise InvalidInput("This step does not ask whether a person viewed content; log viewing with "
                           "`/incident viewed 25m`.", {"viewed": "not on this step"})
    answer = str(values.get(question.id) or "").strip().lower()
    if answer in NOBODY_VIEWED:
        raise InvalidInput(f"“{question.label}” is answered `{answer}`, yet a viewing time is given: change "
                           "the answer, or leave the time empty.", {"viewed": "nobody viewed", question.id: "nobody viewed"})
    if not given.get("viewed"):
        raise InvalidInput("How long did you view content? Items and kind go with a time (like `25m`).",
                           {"viewed": "how long, like 25m"})
    return Viewing(_duration(given["viewed"], field="viewed", most=MAX_VIEWING),
                   _renamed(parse_items, given.get("viewed_items"), "viewed_items"),
                   _renamed(parse_kind, given.get("viewed_kind"), "viewed_kind"), tz_of(core, actor))


def _renamed(parse, value: Any, name: str):
    try:
        return parse(value)
    except InvalidInput as err:
        raise InvalidInput(str(err).replace("`items`", f"`{name}`").replace("`kind`", f"`{name}`"),
                           {name: next(iter(err.fields.values()), "")}) from None


def _once(session: Session, user: str, kind: str, key: str, now: datetime) -> bool:
    """Record that a nudge is sent; False when it was sent before (or by a concurrent request)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return session.execute(insert(WellbeingNudge).values(user_id=user, kind=kind, key=key, sent_at=now)
                           .on_conflict_do_nothing(index_elements=["user_id", "kind", "key"])
                           .returning(WellbeingNudge.id)).scalar() is not None


def _dm(core: Core, session: Session, to: str, kind: str, **context: Any) -> None:
    text = core.render.text("slack/wellbeing_nudge.txt.j2", kind=kind, **context)
    enqueue(session, "post", {"channel": to, "text": text})


def _nudge(core: Core, session: Session, seen: Figures, incident_id: int | None, tz: ZoneInfo, now: datetime) -> int:
    cfg, user, day = core.config.wellbeing, seen.user, local_day(now, tz)
    sent = 0
    common = {"user": user, "today": human(seen.today), "daily_limit": human(seen.daily_limit),
              "break_length": human(cfg.break_length), "in_a_row": human(seen.in_a_row)}
    if seen.at_daily_limit:
        _once(session, user, "daily80", day, now)  # reaching it at once says both
        if _once(session, user, "daily100", day, now):
            _dm(core, session, user, "daily100", **common)
            sent += 1
        if incident_id is not None and _once(session, user, "lead", f"{day}:{incident_id}", now):
            leads = [u for u in session.scalars(select(RoleAssignment.user_id).where(
                RoleAssignment.incident_id == incident_id, RoleAssignment.role == "incident_lead")) if u != user]
            for lead in dict.fromkeys(leads):
                _dm(core, session, lead, "lead", user=user, incident=ref(incident_id))
                sent += 1
    elif seen.today >= NEAR * seen.daily_limit and _once(session, user, "daily80", day, now):
        _dm(core, session, user, "daily80", **common)
        sent += 1
    if seen.break_due and _once(session, user, "break", seen.streak_start.isoformat(), now):
        _dm(core, session, user, "break", **common)
        sent += 1
    return sent


# -- breaks and the person's own view -----------------------------------------------------------

def take_break(core: Core, actor: str, duration: Any = None) -> Outcome:
    """The caller takes a break (default `wellbeing.break_length`): no viewing assignments until it
    ends. Acts only on the caller's own record."""
    cfg = core.config.wellbeing
    length = cfg.break_length if duration in (None, "") else _duration(duration, field="duration", most=MAX_BREAK)
    now = utcnow()
    with core.db.tx() as session:
        session.add(WellbeingBreak(user_id=actor, started_at=now, ends_at=now + length))
    return Outcome("break_started", None, {"length": human(length), "until": now + length})


@dataclass
class WellbeingView:
    figures: Figures
    today: str
    week: str
    daily_limit: str
    weekly_limit: str
    in_a_row: str
    break_every: str
    break_length: str
    last_break: datetime | None
    on_break_until: datetime | None
    hours_today: dict[str, str] | None = None  # responder hours (bot.hours) by band, for people
    hours_week: dict[str, str] | None = None


def my_wellbeing(core: Core, actor: str) -> WellbeingView:
    """The caller's own exposure today and this week against the limits, and their last break."""
    cfg = core.config.wellbeing
    tz = tz_of(core, actor)
    now = utcnow()
    with core.db.read() as session:
        seen = figures(core, session, actor, tz, now)
        today: Hours = person_hours(session, actor, tz, *day_bounds(now, tz))
        week: Hours = person_hours(session, actor, tz, *week_bounds(now, tz))
    return WellbeingView(
        figures=seen, today=human(seen.today), week=human(seen.week), daily_limit=human(cfg.daily_limit),
        weekly_limit=human(cfg.weekly_limit), in_a_row=human(seen.in_a_row), break_every=human(cfg.break_every),
        break_length=human(cfg.break_length), last_break=seen.last_break.started_at if seen.last_break else None,
        on_break_until=seen.on_break_until, hours_today=today.text(), hours_week=week.text())


# -- assignment ---------------------------------------------------------------------------------

def is_viewer_role(core: Core, role: str) -> bool:
    return role in core.config.wellbeing.viewers


def unavailable(seen: Figures) -> str | None:
    """Why someone should get no viewing work now (no figures: a lead may read it), or None."""
    if seen.at_daily_limit:
        return "has reached today's viewing limit"
    if seen.at_weekly_limit:
        return "has reached this week's viewing limit"
    if seen.on_break_until is not None:
        return "is on a break"
    return None


def last_assigned(session: Session, user: str) -> datetime | None:
    return session.scalars(select(RoleAssignment.assigned_at).where(RoleAssignment.user_id == user)
                           .order_by(RoleAssignment.assigned_at.desc()).limit(1)).first()


def pick(core: Core, session: Session, candidates: list[str], tzs: dict[str, ZoneInfo],
         now: datetime) -> tuple[str | None, str]:
    """Among `candidates`: under the limits, not on a break, least exposure this week, then least
    recently assigned. Returns (user, why) — the why names no figures — or (None, why not)."""
    fit: list[tuple[int, datetime, int, str]] = []
    for order, user in enumerate(candidates):
        seen = figures(core, session, user, tzs[user], now)
        if unavailable(seen) is None:
            when = last_assigned(session, user) or datetime.min.replace(tzinfo=UTC)
            fit.append((seen.week, when, order, user))
    if not fit:
        return None, "everyone configured for it has reached a viewing limit or is on a break"
    fit.sort()
    chosen = fit[0]
    if len(fit) == 1:
        why = "the only one under today's limit and not on a break"
    elif fit[1][0] == chosen[0]:
        why = "under today's limit, not on a break, and assigned least recently"
    else:
        why = f"under today's limit, not on a break, and the least viewing this week of {len(fit)} people"
    return chosen[3], why


# -- retention ----------------------------------------------------------------------------------

def purge_expired(db: Database, retention: timedelta) -> int:
    """Delete ledger rows, breaks and sent nudges older than `retention`."""
    cutoff = utcnow() - retention
    with db.tx() as session:
        gone = session.execute(delete(Exposure).where(Exposure.at < cutoff)).rowcount
        gone += session.execute(delete(WellbeingBreak).where(WellbeingBreak.ends_at < cutoff)).rowcount
        gone += session.execute(delete(WellbeingNudge).where(WellbeingNudge.sent_at < cutoff)).rowcount
    return gone
