"""Read models of an incident for the checklist, `status` and `list` (plain data, no Slack)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..clocks.now import utcnow
from ..core import Core
from ..db.models import Incident, Page, Participant, RoleAssignment, StepState, Timer
from ..durations import format_duration
from . import ref


@dataclass
class ClockLine:
    """One clock of a step, as the checklist shows it."""

    what: str  # "remind the owner", "page Legal on-call"
    after: str  # "4h"
    start: str  # "declared" or the id of the step whose completion starts it
    law: bool  # a legal period (basis `law: …`), else an internal target
    basis: str
    due_at: datetime | None = None  # None: not started yet (its `start` step is not done)
    fired: bool = False


@dataclass
class StepLine:
    id: str
    title: str
    owner_role: str
    owner_label: str
    owner_users: list[str]
    state: str
    done_by: str | None
    done_at: datetime | None
    skipped_reason: str | None
    values: dict[str, Any]  # shown in Slack: references typed by responders (ids, refs, counts)
    waiting_on: list[str]
    has_fields: bool
    due_at: datetime | None = None
    overdue: bool = False
    recorded: list[str] = field(default_factory=list)  # kept on the timeline, not shown in Slack
    people: list[str] = field(default_factory=list)  # ids of `values` that hold a Slack user
    labels: dict[str, str] = field(default_factory=dict)  # field id -> label, for the values shown
    clocks: list[ClockLine] = field(default_factory=list)

    @property
    def next_clock(self) -> ClockLine | None:
        pending = [c for c in self.clocks if c.due_at is not None and not c.fired]
        return min(pending, key=lambda c: c.due_at) if pending else None


@dataclass
class RoleLine:
    role: str
    label: str
    users: list[str]


@dataclass
class PageLine:
    id: int
    role: str
    label: str
    level: int
    created_at: datetime
    reason: str
    escalates_at: datetime | None = None  # when the next level is paged if nobody acknowledges
    last_level: bool = False


@dataclass
class IncidentView:
    number: int
    ref: str
    title: str
    playbook_id: str
    playbook_title: str
    severity: str
    status: str
    declared_at: datetime
    declared_by: str
    channel_id: str | None
    channel_name: str | None
    resolution: str | None
    roles: list[RoleLine] = field(default_factory=list)
    steps: list[StepLine] = field(default_factory=list)
    pages: list[PageLine] = field(default_factory=list)
    now: datetime | None = None
    status_due: datetime | None = None  # the next status-update reminder

    @property
    def done_count(self) -> int:
        return sum(1 for s in self.steps if s.state in ("done", "skipped"))

    @property
    def overdue(self) -> list[StepLine]:
        return [s for s in self.steps if s.overdue]


def role_holders(session: Session, incident_id: int) -> dict[str, list[str]]:
    holders: dict[str, list[str]] = {}
    for row in session.scalars(
        select(RoleAssignment).where(RoleAssignment.incident_id == incident_id).order_by(RoleAssignment.id)
    ):
        holders.setdefault(row.role, []).append(row.user_id)
    return holders


def load_view(core: Core, session: Session, incident: Incident) -> IncidentView:
    playbook = core.playbook(incident.playbook_id)
    holders = role_holders(session, incident.id)
    states = {
        row.step_id: row
        for row in session.scalars(select(StepState).where(StepState.incident_id == incident.id))
    }
    due: dict[str, datetime] = {}
    armed: dict[tuple[str, int], Timer] = {}
    escalations: dict[int, datetime] = {}
    status_due = None
    for timer in session.scalars(
        select(Timer).where(Timer.incident_id == incident.id, Timer.state.in_(("pending", "fired")))
    ):
        if timer.kind == "escalate":
            if timer.state == "pending" and timer.page_id is not None:
                escalations[timer.page_id] = timer.due_at
            continue
        if timer.kind == "status":
            if timer.state == "pending" and (status_due is None or timer.due_at < status_due):
                status_due = timer.due_at
            continue
        if timer.step_id is None or timer.kind not in ("remind", "page"):
            continue
        if isinstance(timer.spec.get("index"), int):
            armed[(timer.step_id, timer.spec["index"])] = timer
        if timer.step_id not in due or timer.due_at < due[timer.step_id]:
            due[timer.step_id] = timer.due_at
    now = utcnow()
    titles = {step.id: step.title for step in playbook.steps}
    view = IncidentView(
        number=incident.id, ref=ref(incident.id), title=incident.title, playbook_id=playbook.id,
        playbook_title=playbook.title, severity=incident.severity, status=incident.status,
        declared_at=incident.declared_at, declared_by=incident.declared_by,
        channel_id=incident.channel_id, channel_name=incident.channel_name,
        resolution=incident.resolution, now=now, status_due=status_due,
    )
    for role in playbook.roles + sorted(set(holders) - set(playbook.roles)):
        view.roles.append(RoleLine(role, core.role_label(role), holders.get(role, [])))
    for step in playbook.steps:
        state = states.get(step.id)
        current = state.state if state else "waiting"
        values = dict(state.values) if state else {}
        # Classifications (select fields) describe the material: they stay on the timeline and
        # are never repeated in Slack. References typed as text (case, report, hold ids) are shown.
        shown = {f.id: values[f.id] for f in step.fields if f.id in values and not _private(f)}
        hidden = [f.label for f in step.fields if f.id in values and _private(f)]
        step_due = due.get(step.id) if current in ("active", "waiting") else None
        view.steps.append(StepLine(
            id=step.id, title=step.title, owner_role=step.owner, owner_label=core.role_label(step.owner),
            owner_users=holders.get(step.owner, []), state=current,
            done_by=state.done_by if state else None, done_at=state.done_at if state else None,
            skipped_reason=state.skipped_reason if state else None,
            values=shown, recorded=hidden, people=[f.id for f in step.fields if f.type == "user"],
            waiting_on=[titles.get(a, a) for a in step.after
                        if (states.get(a) is None or states[a].state not in ("done", "skipped"))],
            has_fields=bool(step.fields), due_at=step_due,
            overdue=bool(step_due and step_due <= now),
            labels={f.id: f.label for f in step.fields},
            clocks=_clocks(core, step, armed) if current in ("active", "waiting") else [],
        ))
    for page in session.scalars(
        select(Page).where(Page.incident_id == incident.id, Page.state == "open").order_by(Page.id)
    ):
        view.pages.append(PageLine(page.id, page.role, core.role_label(page.role), page.level,
                                   page.created_at, page.reason, escalates_at=escalations.get(page.id)))
    return view


def _clocks(core: Core, step, armed: dict[tuple[str, int], Timer]) -> list[ClockLine]:
    """Every clock of a step: running (its due time), fired, or not started yet."""
    lines = []
    for index, spec in enumerate(step.timers):
        if spec.remind:
            what = "remind the owner" if spec.remind == "owner" else f"remind {core.role_label(spec.remind)}"
        else:
            what = f"page {core.role_label(spec.page)}"
        timer = armed.get((step.id, index))
        lines.append(ClockLine(
            what=what, after=format_duration(spec.after), start=spec.from_,
            law=spec.basis.lower().startswith("law"), basis=spec.basis,
            due_at=timer.due_at if timer else None, fired=bool(timer and timer.state == "fired"),
        ))
    lines.sort(key=lambda c: (c.due_at is None, c.due_at or datetime.max.replace(tzinfo=None)))
    return lines


def _private(field) -> bool:
    """Never shown in Slack: a field the playbook marks `private: true` (a classification of the
    material, for one); it stays on the timeline."""
    return field.private


def participants(session: Session, incident_id: int) -> list[str]:
    return list(session.scalars(select(Participant.user_id).where(Participant.incident_id == incident_id)))
