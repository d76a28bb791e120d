"""What a case tool reads through the API (`read` scope): incidents found by status, playbook or
external id; one incident's steps, clocks and open pages; its timeline.

Field values: a field marked `private: true` (and every classification) is never shown in
Slack, where everyone in the channel reads it. A case tool with the `read` scope already reads
those values in the timeline JSON (`step_done` events carry them, as every export does), so
the incident's steps carry them too, and name which are private (`private_fields`): the tool
must keep them out of anything it shows widely. Exposure durations are never here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from ..core import Core
from ..db.models import Evidence, Incident, Page, StepState, Timer
from ..errors import InvalidInput, NotFound
from ..policy import authorize
from ..timeline.build import load_events
from . import ref
from .views import role_holders

STATUSES = ("open", "resolved", "closed")


@dataclass
class StepRecord:
    id: str
    title: str
    owner: str
    state: str
    done_by: str | None
    done_at: datetime | None
    skipped_reason: str | None
    values: dict[str, Any]
    private_fields: list[str]
    after: list[str]


@dataclass
class ClockRecord:
    kind: str  # remind | page | status | escalate
    step: str | None
    target: str | None
    due_at: datetime
    basis: str


@dataclass
class PageRecord:
    id: int
    role: str
    level: int
    created_at: datetime
    reason: str


@dataclass
class IncidentRecord:
    number: int
    ref: str
    playbook: str
    title: str
    severity: str
    status: str
    declared_at: datetime
    declared_by: str
    channel_id: str | None
    channel_name: str | None
    external_id: str | None
    resolution: str | None
    sightings: int = 0
    roles: dict[str, list[str]] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)
    clocks: list[ClockRecord] = field(default_factory=list)
    pages: list[PageRecord] = field(default_factory=list)


def _summary(incident: Incident) -> IncidentRecord:
    return IncidentRecord(
        number=incident.id, ref=ref(incident.id), playbook=incident.playbook_id, title=incident.title,
        severity=incident.severity, status=incident.status, declared_at=incident.declared_at,
        declared_by=incident.declared_by, channel_id=incident.channel_id, channel_name=incident.channel_name,
        external_id=incident.external_id, resolution=incident.resolution)


def find(core: Core, actor: str, *, status: str | None = None, playbook: str | None = None,
         external_id: str | None = None, limit: int = 100, offset: int = 0) -> list[IncidentRecord]:
    """Incidents, newest first (no steps: ask for one incident for those)."""
    authorize(core, None, actor, "see")
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"`status` is one of {', '.join(STATUSES)}.", {"status": "unknown status"})
    query = select(Incident).order_by(Incident.id.desc()).limit(limit).offset(offset)
    if status:
        query = query.where(Incident.status == status)
    if playbook:
        query = query.where(Incident.playbook_id == playbook)
    if external_id:
        query = query.where(Incident.external_id == external_id)
    with core.db.read() as session:
        return [_summary(i) for i in session.scalars(query)]


def detail(core: Core, incident_id: int, actor: str) -> IncidentRecord:
    authorize(core, incident_id, actor, "see")
    with core.db.read() as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise NotFound(f"There is no incident {ref(incident_id)}.")
        record = _summary(incident)
        record.roles = role_holders(session, incident_id)
        record.sightings = session.scalar(select(func.count(Evidence.id)).where(
            Evidence.incident_id == incident_id, Evidence.sighting.is_(True)))
        states = {s.step_id: s for s in session.scalars(select(StepState).where(StepState.incident_id == incident_id))}
        playbook = core.playbooks.get(incident.playbook_id)
        for step in playbook.steps if playbook else []:
            row = states.get(step.id)
            record.steps.append(StepRecord(
                id=step.id, title=step.title, owner=step.owner, state=row.state if row else "waiting",
                done_by=row.done_by if row else None, done_at=row.done_at if row else None,
                skipped_reason=row.skipped_reason if row else None, values=dict(row.values or {}) if row else {},
                private_fields=[f.id for f in step.fields if f.private or f.type == "select"], after=list(step.after)))
        for timer in session.scalars(select(Timer).where(Timer.incident_id == incident_id, Timer.state == "pending")
                                     .order_by(Timer.due_at, Timer.id)):
            record.clocks.append(ClockRecord(kind=timer.kind, step=timer.step_id, target=timer.target,
                                             due_at=timer.due_at, basis=(timer.spec or {}).get("basis") or ""))
        for page in session.scalars(select(Page).where(Page.incident_id == incident_id, Page.state == "open")
                                    .order_by(Page.id)):
            record.pages.append(PageRecord(page.id, page.role, page.level, page.created_at, page.reason))
    return record


def timeline(core: Core, incident_id: int, actor: str) -> list[dict[str, Any]]:
    """The timeline JSON contract (oldest first)."""
    authorize(core, incident_id, actor, "export")
    with core.db.read() as session:
        if session.get(Incident, incident_id) is None:
            raise NotFound(f"There is no incident {ref(incident_id)}.")
        return [event.to_json() for event in load_events(session, incident_id)]
