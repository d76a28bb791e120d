"""The stewards' report (`safeguard wellbeing`): team viewing totals, people over the limits,
breaks taken, and responder hours (working, late, night), with a chart in its HTML form.

Groups are "everyone" and each configured role. A group of fewer than three people gets no row
at all (its figures would be one or two people's own); the report says which groups were left
out. Individual figures appear only with `people=True` (`--people`): stewards may read them
(DESIGN "Wellbeing"), but a team report is often passed on, so by default it names nobody.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from .core import Core
from .db.models import Exposure, WellbeingBreak
from .errors import InvalidInput
from .hours import Hours, activity, hours_of
from .wellbeing import MAX_VIEWING, human, tz_of, viewed_seconds

MIN_GROUP = 3  # no row for a group smaller than this: figures of one or two people are theirs
FORMATS = ("md", "html", "csv", "json")


@dataclass
class GroupRow:
    group: str
    people: int
    viewing_people: int = 0
    # Viewing figures: None when fewer than MIN_GROUP of the group viewed (they would be theirs).
    hours: float | None = None  # viewing hours
    hours_per_person: float | None = None
    people_over_daily: int | None = None
    days_over_daily: int | None = None
    weeks_over_weekly: int | None = None
    breaks: int = 0
    working_hours: float = 0.0  # responder hours, by band of each person's own clock
    late_hours: float = 0.0
    night_hours: float = 0.0
    responder_hours: float = 0.0


COLUMNS = tuple(GroupRow.__dataclass_fields__)


def _per_user_viewing(session, users, start: date, end: date, begin: datetime, finish: datetime, cfg) -> dict:
    out = {}
    for user in users:
        days = [viewed_seconds(session, user, begin + timedelta(days=n), begin + timedelta(days=n + 1))
                for n in range((end - start).days + 1)]
        weeks, monday = [], start - timedelta(days=start.weekday())
        while monday <= end:
            week_start = datetime.combine(monday, datetime.min.time(), tzinfo=UTC)
            weeks.append(viewed_seconds(session, user, week_start, week_start + timedelta(days=7)))
            monday += timedelta(days=7)
        out[user] = {"seconds": sum(days), "days_over": sum(d >= cfg.daily_limit.total_seconds() for d in days),
                     "weeks_over": sum(w >= cfg.weekly_limit.total_seconds() for w in weeks)}
    return out


def steward_report(core: Core, start: date, end: date, *, people: bool = False,
                   zone_of: Callable[[str], ZoneInfo] | None = None) -> dict[str, Any]:
    """Over the days `start`..`end` (inclusive; UTC days for viewing, each person's own clock for
    the bands of responder hours)."""
    if end < start:
        raise InvalidInput("--to is before --from.")
    if (end - start).days > 366:
        raise InvalidInput("At most a year at a time.")
    cfg = core.config.wellbeing
    zone_of = zone_of or (lambda user: tz_of(core, user))
    begin = datetime.combine(start, datetime.min.time(), tzinfo=UTC)
    finish = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    with core.db.read() as session:
        viewers = sorted(set(session.scalars(select(Exposure.user_id).where(
            Exposure.at > begin, Exposure.at < finish + MAX_VIEWING))))
        viewing = _per_user_viewing(session, viewers, start, end, begin, finish, cfg)
        breaks: dict[str, int] = {}
        for user in session.scalars(select(WellbeingBreak.user_id).where(
                WellbeingBreak.started_at >= begin, WellbeingBreak.started_at < finish)):
            breaks[user] = breaks.get(user, 0) + 1
        acts = activity(session, begin, finish)
    hours = hours_of(acts, begin, finish, zone_of)  # outside the read: a time zone may ask Slack
    everyone = sorted(set(viewers) | set(hours) | set(breaks))
    groups: list[tuple[str, list[str]]] = [("everyone", everyone)]
    for role, role_cfg in core.config.roles.items():
        members = [u for u in everyone if u in role_cfg.users]
        if role in cfg.viewers or members:
            groups.append((core.role_label(role), members))
    rows, left_out = [], []
    for name, members in groups:
        if len(members) < MIN_GROUP:
            left_out.append(name)
            continue
        rows.append(_row(name, members, viewing, breaks, hours))
    report: dict[str, Any] = {
        "from": start.isoformat(), "to": end.isoformat(), "min_group": MIN_GROUP,
        "limits": {"daily": human(cfg.daily_limit), "weekly": human(cfg.weekly_limit),
                   "break_every": human(cfg.break_every)},
        "rows": [asdict(row) for row in rows], "left_out": left_out}
    if people:
        report["people"] = [{
            "user": user, **{f"{band}_hours": value for band, value in hours.get(user, Hours()).in_hours().items()},
            "viewing_hours": round(viewing.get(user, {}).get("seconds", 0) / 3600, 1),
            "days_over_daily": viewing.get(user, {}).get("days_over", 0), "breaks": breaks.get(user, 0)}
            for user in everyone]
    return report


def _row(name: str, members: list[str], viewing: dict, breaks: dict[str, int], hours: dict[str, Hours]) -> GroupRow:
    seen = [viewing[u] for u in members if u in viewing]
    worked = sum((hours.get(u, Hours()) for u in members), Hours()).in_hours()
    row = GroupRow(name, len(members), viewing_people=len(seen), breaks=sum(breaks.get(u, 0) for u in members),
                   working_hours=worked["working"], late_hours=worked["late"], night_hours=worked["night"],
                   responder_hours=worked["total"])
    if len(seen) >= MIN_GROUP:
        viewed = sum(f["seconds"] for f in seen) / 3600
        row.hours, row.hours_per_person = round(viewed, 1), round(viewed / len(seen), 1)
        row.people_over_daily = sum(1 for f in seen if f["days_over"])
        row.days_over_daily = sum(f["days_over"] for f in seen)
        row.weeks_over_weekly = sum(f["weeks_over"] for f in seen)
    return row


# -- the chart ----------------------------------------------------------------------------------

BAR_BANDS = (("working_hours", "working", "#4e79a7"), ("late_hours", "late", "#f28e2b"),
             ("night_hours", "night", "#59409e"), ("hours", "viewing", "#e15759"))


def chart(report: dict[str, Any], width: int = 640) -> dict[str, Any]:
    """Geometry of a horizontal bar chart (server-side SVG, no script): per group one stacked bar
    of responder hours (working, late, night) and one bar of viewing hours."""
    label_w, bar_h, gap, top = 200, 14, 10, 24
    rows = report["rows"]
    most = max([r["responder_hours"] for r in rows] + [r["hours"] or 0 for r in rows] + [0.1])
    scale = (width - label_w - 60) / most
    bars, y = [], top
    for row in rows:
        x, stacked = label_w, []
        for key, band, colour in BAR_BANDS[:3]:
            w = row[key] * scale
            if w > 0:
                stacked.append({"x": round(x, 1), "w": round(w, 1), "colour": colour, "title": f"{band}: {row[key]} h"})
            x += w
        bars.append({"label": row["group"], "y": y, "segments": stacked, "end": round(x, 1),
                     "value": f"{row['responder_hours']} h on incidents"})
        if row["hours"] is None:  # fewer than three viewed: no viewing bar
            y += bar_h + gap
            continue
        v = row["hours"] * scale
        bars.append({"label": "", "y": y + bar_h + 2, "end": round(label_w + v, 1), "value": f"{row['hours']} h viewing",
                     "segments": [{"x": label_w, "w": round(v, 1), "colour": BAR_BANDS[3][2],
                                   "title": f"viewing: {row['hours']} h"}] if v > 0 else []})
        y += 2 * bar_h + 2 + gap
    return {"width": width, "height": y + 4, "bar_h": bar_h, "label_w": label_w, "bars": bars,
            "legend": [{"label": band, "colour": colour, "x": label_w + n * 90} for n, (_, band, colour) in enumerate(BAR_BANDS)]}


# -- rendering ----------------------------------------------------------------------------------

def render_report(core: Core, report: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for row in report["rows"]:
            writer.writerow(["" if row[c] is None else row[c] for c in COLUMNS])
        if report.get("people") is not None:
            writer.writerow([])
            keys = list(report["people"][0]) if report["people"] else ["user"]
            writer.writerow(keys)
            for person in report["people"]:
                writer.writerow([person[k] for k in keys])
        return out.getvalue()
    if fmt not in FORMATS:
        raise InvalidInput(f"Formats: {', '.join(FORMATS)}.")
    name = "wellbeing.html.j2" if fmt == "html" else "wellbeing.md.j2"
    context = {"report": report, "chart": chart(report) if fmt == "html" else None}
    return core.render.env.get_template(name).render(**context).strip() + "\n"
