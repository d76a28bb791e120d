"""Plain data describing one incident for its timeline exports and post-incident review.

The database layer builds an :class:`IncidentReview` from its rows; :mod:`bot.timeline.export`
renders it. Nothing here touches the database or Slack.

The review never contains content: evidence is referred to by case id, content id, hash and
report id only (see :func:`evidence_references`), and every rendering ends with
:data:`NO_CONTENT_STATEMENT`. Every datetime is timezone-aware UTC (a naive one is read as UTC).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any, Literal

from bot.timeline.chain import format_at

NO_CONTENT_STATEMENT = (
    "This document contains no content and no identifying descriptions. Evidence is referred "
    "to only by case id, content id, hash and report id."
)

StepState = Literal["waiting", "active", "done", "skipped"]
DeadlineState = Literal["pending", "met", "missed", "cancelled", "fired"]

# 18 U.S.C. 2258A(h): a CyberTipline report is a request to preserve its contents for 1 year
# (90 days for reports made before the REPORT Act of 7 May 2024).
PRESERVATION_BASIS = "law: 18 U.S.C. 2258A(h), 1 year from the report"
REPORT_ACT_IN_FORCE = datetime(2024, 5, 7, tzinfo=UTC)
PRESERVATION_BEFORE_REPORT_ACT = timedelta(days=90)

# Review meeting: within 3 (calendar) days of resolution for sev1, 5 working days for sev2.
REVIEW_MEETING_DAYS = {"sev1": 3}
REVIEW_MEETING_WORKING_DAYS = {"sev2": 5}

# Keys of step values and event data that name evidence (never describe it).
EVIDENCE_KEYS = frozenset(
    {
        "case_id",
        "case_ids",
        "content_id",
        "content_ids",
        "report_id",
        "report_ids",
        "hash",
        "hashes",
        "md5",
        "sha1",
        "sha256",
        "pdq",
        "photodna",
    }
)


def utc(at: datetime) -> datetime:
    """``at`` in UTC (a naive datetime is taken to be UTC already)."""
    if at.tzinfo is None:
        return at.replace(tzinfo=UTC)
    return at.astimezone(UTC)


# --------------------------------------------------------------------------- the views


@dataclass(frozen=True)
class EventView:
    """One timeline event, exactly as stored and hash-chained."""

    seq: int
    at: datetime
    kind: str
    actor: str | None
    text: str
    data: dict[str, Any]
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        """The contract's keys, in the contract's order; ``at`` spelled by ``chain.format_at``."""
        return {
            "seq": self.seq,
            "at": format_at(self.at),
            "kind": self.kind,
            "actor": self.actor,
            "text": self.text,
            "data": self.data,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> EventView:
        """The inverse of :meth:`to_json`."""
        at = datetime.strptime(obj["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        return cls(
            seq=int(obj["seq"]),
            at=at,
            kind=obj["kind"],
            actor=obj["actor"],
            text=obj["text"],
            data=obj["data"],
            prev_hash=obj["prev_hash"],
            hash=obj["hash"],
        )


@dataclass(frozen=True)
class StepView:
    id: str
    title: str
    owner_role: str
    owner_users: list[str]
    state: StepState
    done_by: str | None = None
    done_at: datetime | None = None  # when done (or skipped)
    skipped_reason: str | None = None
    values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeadlineView:
    """One clock of a step (a playbook timer): when it started, fell due and was met."""

    step_id: str
    step_title: str
    label: str  # "remind owner", "page legal"
    basis: str  # "law: as soon as reasonably possible", "internal target", or ""
    clock_from: str  # "declared" or a step id
    started_at: datetime | None = None
    due_at: datetime | None = None
    met_at: datetime | None = None  # when the step was done
    state: DeadlineState = "pending"

    @property
    def late_by(self) -> timedelta | None:
        """How late the step was done (``met_at - due_at`` when positive), else None."""
        if self.met_at is None or self.due_at is None:
            return None
        late = utc(self.met_at) - utc(self.due_at)
        return late if late > timedelta(0) else None

    def overdue_by(self, now: datetime) -> timedelta | None:
        """How far past due an unmet clock is at ``now`` (None when met, cancelled or not due)."""
        if self.met_at is not None or self.due_at is None or self.state in ("met", "cancelled"):
            return None
        over = utc(now) - utc(self.due_at)
        return over if over > timedelta(0) else None

    @property
    def is_legal(self) -> bool:
        return self.basis.strip().lower().startswith("law")


@dataclass(frozen=True)
class PageView:
    id: int | str
    role: str
    level: int
    reason: str | None
    sent_at: datetime
    acked_at: datetime | None = None
    acked_by: str | None = None
    escalated: bool = False

    @property
    def time_to_ack(self) -> timedelta | None:
        if self.acked_at is None:
            return None
        return utc(self.acked_at) - utc(self.sent_at)


@dataclass(frozen=True)
class ResponderView:
    user_id: str
    display: str  # "Ana Lead", or the user id when no name is known
    roles: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ActionItem:
    text: str
    owner: str | None = None


@dataclass(frozen=True, kw_only=True)
class IncidentReview:
    ref: str  # "INC-7"
    number: int
    title: str = ""
    summary: str = ""
    playbook_id: str
    playbook_title: str
    severity: str
    status: str  # open | resolved | closed
    declared_at: datetime
    declared_by: str | None = None
    confirmed_at: datetime | None = None  # T0: a person confirmed the case
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    resolution: str | None = None
    channel_id: str | None = None
    channel_name: str | None = None  # "inc-7-csam-report", shown as #inc-7-csam-report
    responders: list[ResponderView] = field(default_factory=list)
    people: dict[str, str] = field(default_factory=dict)  # names of others the timeline names (authors, actors)
    role_labels: dict[str, str] = field(default_factory=dict)  # role id → the config's label
    steps: list[StepView] = field(default_factory=list)
    deadlines: list[DeadlineView] = field(default_factory=list)
    pages: list[PageView] = field(default_factory=list)
    events: list[EventView] = field(default_factory=list)
    action_items: list[ActionItem] = field(default_factory=list)
    # Time on the incident per role (bot.hours.RoleHours), never per person; no viewing figures.
    responder_hours: list[Any] = field(default_factory=list)
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def headline(self) -> str:
        return self.title or self.summary or self.ref

    @property
    def t0(self) -> datetime | None:
        return self.confirmed_at

    def ordered_events(self) -> list[EventView]:
        """The events oldest first (by ``seq``)."""
        return sorted(self.events, key=lambda e: e.seq)

    @cached_property
    def _names(self) -> dict[str, str]:
        return {**self.people, **{r.user_id: r.display or r.user_id for r in self.responders}}

    def role_label(self, role: str | None) -> str:
        """The config's label of a role ("Child-safety specialist"), or its id."""
        return self.role_labels.get(role or "", role or "")

    def display_name(self, user_id: str | None) -> str | None:
        """The responder's display name for ``user_id``, or the id itself."""
        if user_id is None:
            return None
        return self._names.get(user_id, user_id)


# --------------------------------------------------------------------------- formatting


def format_utc(at: datetime | None, *, seconds: bool = True) -> str:
    """``2025-03-04 10:15:02 UTC`` (for people; machines get ``chain.format_at``)."""
    if at is None:
        return ""
    return utc(at).strftime("%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC")


def format_duration(delta: timedelta | None) -> str:
    """``45s``, ``12m 30s``, ``4h 05m``, ``2d 3h 00m``; negative durations get a ``-``."""
    if delta is None:
        return ""
    total = int(delta.total_seconds())
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours}h {minutes:02d}m"
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m {secs:02d}s"
    return f"{sign}{secs}s"


# --------------------------------------------------------------------------- legal record


@dataclass(frozen=True)
class ReportRecord:
    """A report (or notification) id logged as a step value, with its preservation period."""

    step_id: str
    step_title: str
    field: str  # the value's name, e.g. "report_id"
    report_id: str
    filed_at: datetime | None  # when the step was done
    since_t0: timedelta | None
    preservation_start: datetime | None
    preservation_end: datetime | None


def is_report_field(name: str) -> bool:
    """Step values naming a report: ``report_id``, ``report_ids`` or ``*_report_id``."""
    name = name.lower()
    return name in ("report_id", "report_ids") or name.endswith("_report_id")


def add_years(at: datetime, years: int) -> datetime:
    """The same date and time ``years`` later; 29 February becomes 1 March (never earlier)."""
    try:
        return at.replace(year=at.year + years)
    except ValueError:  # 29 February into a common year
        return at.replace(year=at.year + years, month=3, day=1)


def preservation_end(start: datetime) -> datetime:
    """End of the 2258A(h) preservation period of a report filed at ``start``."""
    start = utc(start)
    if start < REPORT_ACT_IN_FORCE:
        return start + PRESERVATION_BEFORE_REPORT_ACT
    return add_years(start, 1)


def _split_ids(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def report_records(review: IncidentReview) -> list[ReportRecord]:
    """Report ids derived from step values (``report_id`` and the like) of done steps.

    The preservation hold starts when the report id is logged (the step's completion) and
    ends 1 year later (18 U.S.C. 2258A(h)).
    """
    records: list[ReportRecord] = []
    t0 = review.confirmed_at
    for step in review.steps:
        for name, value in step.values.items():
            if not is_report_field(name):
                continue
            for report_id in _split_ids(value):
                filed = utc(step.done_at) if step.state == "done" and step.done_at else None
                records.append(
                    ReportRecord(
                        step_id=step.id,
                        step_title=step.title,
                        field=name,
                        report_id=report_id,
                        filed_at=filed,
                        since_t0=(filed - utc(t0)) if filed and t0 else None,
                        preservation_start=filed,
                        preservation_end=preservation_end(filed) if filed else None,
                    )
                )
    return records


@dataclass(frozen=True)
class ClockRow:
    """One row of the legal-clock table."""

    clock: str  # the step's title
    step_id: str
    label: str  # "remind owner", "page legal", or "" for a report without a clock
    basis: str
    clock_from: str
    started_at: datetime | None
    due_at: datetime | None
    met_at: datetime | None
    state: str
    late_by: timedelta | None
    overdue_by: timedelta | None
    result: str  # a sentence for people: "met 2h 15m late", "on time", ...
    reports: tuple[ReportRecord, ...]

    @property
    def report_ids(self) -> str:
        return ", ".join(r.report_id for r in self.reports)

    @property
    def preservation_start(self) -> datetime | None:
        starts = [r.preservation_start for r in self.reports if r.preservation_start]
        return min(starts) if starts else None

    @property
    def preservation_end(self) -> datetime | None:
        ends = [r.preservation_end for r in self.reports if r.preservation_end]
        return max(ends) if ends else None


def clock_result(deadline: DeadlineView, now: datetime, step: StepView | None = None) -> str:
    """How a clock ended, in words."""
    if deadline.due_at is None:
        if deadline.met_at is not None:
            return "met (clock never started)"
        return "not started"
    if deadline.met_at is not None:
        late = deadline.late_by
        if late is None:
            early = utc(deadline.due_at) - utc(deadline.met_at)
            return f"met on time ({format_duration(early)} to spare)"
        return f"met {format_duration(late)} late"
    if deadline.state == "met":
        return "met"
    if deadline.state == "cancelled":
        if step is not None and step.state == "skipped":
            return "cancelled (step skipped)"
        return "cancelled"
    over = deadline.overdue_by(now)
    if over is not None:
        return f"not met: overdue by {format_duration(over)} at {format_utc(now)}"
    return "pending"


def clock_rows(review: IncidentReview) -> list[ClockRow]:
    """Every deadline with its result, report ids and preservation period, then any report
    whose step had no clock."""
    steps = {s.id: s for s in review.steps}
    reports_by_step: dict[str, list[ReportRecord]] = {}
    for record in report_records(review):
        reports_by_step.setdefault(record.step_id, []).append(record)
    now = review.generated_at
    rows = [
        ClockRow(
            clock=d.step_title,
            step_id=d.step_id,
            label=d.label,
            basis=d.basis,
            clock_from=d.clock_from,
            started_at=d.started_at,
            due_at=d.due_at,
            met_at=d.met_at,
            state=d.state,
            late_by=d.late_by,
            overdue_by=d.overdue_by(now),
            result=clock_result(d, now, steps.get(d.step_id)),
            reports=tuple(reports_by_step.get(d.step_id, ())),
        )
        for d in review.deadlines
    ]
    clocked = {d.step_id for d in review.deadlines}
    for step_id, records in reports_by_step.items():
        if step_id in clocked:
            continue
        first = records[0]
        rows.append(
            ClockRow(
                clock=first.step_title,
                step_id=step_id,
                label="",
                basis="",
                clock_from="",
                started_at=None,
                due_at=None,
                met_at=first.filed_at,
                state="met" if first.filed_at else "pending",
                late_by=None,
                overdue_by=None,
                result="report logged" if first.filed_at else "pending",
                reports=tuple(records),
            )
        )
    return rows


# --------------------------------------------------------------------------- review meeting


def add_working_days(start: datetime, days: int) -> datetime:
    """``start`` moved forward by ``days`` working days (Monday to Friday, no holidays)."""
    current = start
    added = 0
    while added < days:
        current += timedelta(days=1)
        if current.weekday() < 5:
            added += 1
    return current


@dataclass(frozen=True)
class MeetingDue:
    required: bool
    rule: str  # "within 3 days of resolution"
    due_at: datetime | None  # None until resolved (or when not required)

    @property
    def due_date(self) -> date | None:
        return self.due_at.date() if self.due_at else None


def review_meeting_due(review: IncidentReview) -> MeetingDue:
    """3 days after resolution for sev1, 5 working days for sev2; not required otherwise."""
    severity = review.severity.strip().lower()
    resolved = utc(review.resolved_at) if review.resolved_at else None
    if severity in REVIEW_MEETING_DAYS:
        n = REVIEW_MEETING_DAYS[severity]
        due = resolved + timedelta(days=n) if resolved else None
        return MeetingDue(True, f"{severity}: within {n} days of resolution", due)
    if severity in REVIEW_MEETING_WORKING_DAYS:
        n = REVIEW_MEETING_WORKING_DAYS[severity]
        due = add_working_days(resolved, n) if resolved else None
        return MeetingDue(True, f"{severity}: within {n} working days of resolution", due)
    return MeetingDue(False, f"not required for {severity or 'this severity'}", None)


# --------------------------------------------------------------------------- figures


def _flatten_refs(value: Any) -> Iterable[str]:
    if isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, str | int) and not isinstance(item, bool):
                yield str(item)
    elif isinstance(value, str | int) and not isinstance(value, bool):
        yield str(value)


@dataclass(frozen=True)
class EvidenceRef:
    kind: str  # the key it was logged under: case_id, content_id, sha256, report_id, ...
    value: str
    source: str  # "#12" (an event) or "step ncmec-report"


def evidence_references(review: IncidentReview) -> list[EvidenceRef]:
    """Evidence identifiers logged in step values and event data (never content)."""
    seen: set[tuple[str, str]] = set()
    refs: list[EvidenceRef] = []

    def add(key: str, value: Any, source: str) -> None:
        kind = key.lower()
        if kind not in EVIDENCE_KEYS and not kind.endswith("_report_id"):
            return
        for text in _flatten_refs(value):
            if (kind, text) not in seen:
                seen.add((kind, text))
                refs.append(EvidenceRef(kind, text, source))

    for step in review.steps:
        for key, value in step.values.items():
            add(key, value, f"step {step.id}")
    for event in review.ordered_events():
        if isinstance(event.data, dict):
            for key, value in event.data.items():
                add(key, value, f"#{event.seq}")
    return refs


def impact_figures(review: IncidentReview) -> list[tuple[str, str]]:
    """Numbers for the Impact section, computed from the record."""
    figures: list[tuple[str, str]] = []
    declared = utc(review.declared_at)
    if review.confirmed_at:
        figures.append(
            (
                "Declaration to confirmation (T0)",
                format_duration(utc(review.confirmed_at) - declared),
            )
        )
    records = report_records(review)
    filed = sorted(r.filed_at for r in records if r.filed_at)
    if filed and review.confirmed_at:
        figures.append(("T0 to first report", format_duration(filed[0] - utc(review.confirmed_at))))
    figures.append(("Reports logged", str(len({r.report_id for r in records}))))
    if review.resolved_at:
        figures.append(
            ("Declaration to resolution", format_duration(utc(review.resolved_at) - declared))
        )
    total = len(review.steps)
    done = sum(1 for s in review.steps if s.state == "done")
    skipped = sum(1 for s in review.steps if s.state == "skipped")
    figures.append(("Steps done", f"{done} of {total}"))
    figures.append(("Steps skipped", str(skipped)))
    figures.append(("Steps still open", str(total - done - skipped)))
    met = sum(1 for d in review.deadlines if d.met_at is not None and d.late_by is None)
    late = sum(1 for d in review.deadlines if d.late_by is not None)
    unmet = sum(1 for d in review.deadlines if d.overdue_by(review.generated_at) is not None)
    figures.append(("Clocks met on time", str(met)))
    figures.append(("Clocks met late", str(late)))
    figures.append(("Clocks overdue and not met", str(unmet)))
    acked = [p.time_to_ack for p in review.pages if p.time_to_ack is not None]
    figures.append(("Pages sent", str(len(review.pages))))
    figures.append(("Pages acknowledged", str(len(acked))))
    figures.append(("Pages escalated", str(sum(1 for p in review.pages if p.escalated))))
    if acked:
        figures.append(("Longest time to acknowledge", format_duration(max(acked))))
    figures.append(("Responders", str(len(review.responders))))
    figures.append(("Timeline events", str(len(review.events))))
    return figures


def skipped_steps(review: IncidentReview) -> list[StepView]:
    return [s for s in review.steps if s.state == "skipped"]
