"""Finding incidents and deciding who may act on them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core import Core
from ..db.models import Incident, Participant
from ..errors import DomainError, NotFound
from ..policy import authorize
from . import ref
from .views import IncidentView, load_view


@dataclass(frozen=True)
class ListedIncident:
    number: int
    ref: str
    title: str | None  # None: the caller may not see it (a restricted incident they declared)
    severity: str
    playbook_title: str
    channel_id: str | None
    declared_at: datetime


def by_channel(session: Session, channel_id: str | None) -> Incident | None:
    if not channel_id:
        return None
    return session.scalars(select(Incident).where(Incident.channel_id == channel_id)).first()


def incident_number_for_channel(core: Core, channel_id: str | None) -> int | None:
    with core.db.read() as session:
        incident = by_channel(session, channel_id)
        return incident.id if incident else None


def check_access(core: Core, incident_id: int, user: str) -> None:
    """Members of the incident channel and the configured leads may see it; nobody else (in a
    restricted incident, only members who hold one of its roles, and the leads)."""
    authorize(core, incident_id, user, "see")


def list_open(core: Core, user: str, only: set[int] | None = None) -> list[ListedIncident]:
    """Open incidents the caller may see (of `only`, when given). A restricted incident someone
    declared without being let in is listed for them without its summary (they know it exists;
    not what it holds)."""
    with core.db.read() as session:
        query = select(Incident).where(Incident.status != "closed").order_by(Incident.id)
        if only is not None:
            query = query.where(Incident.id.in_(sorted(only)[-1000:]))
        mine: set[int] = set()
        if not core.is_lead(user):
            mine = set(session.scalars(select(Participant.incident_id).where(
                Participant.user_id == user, Participant.left_at.is_(None))))
            query = query.where((Incident.private.is_(False)) | Incident.id.in_(mine) | (Incident.declared_by == user))
        listed = []
        for i in session.scalars(query):
            playbook = core.playbooks.get(i.playbook_id)
            restricted = bool(playbook and playbook.restricted)
            # As `status` would answer them: a restricted incident's members without its roles see
            # no more than someone outside it.
            sees = core.is_lead(user) or (i.id in mine and (not restricted or _may_see(core, i.id, user)))
            shut_out = not sees and (i.private or restricted)
            listed.append(ListedIncident(i.id, ref(i.id), None if shut_out else i.title, i.severity,
                                         playbook.title if playbook else i.playbook_id,
                                         None if shut_out else i.channel_id, i.declared_at))
        return listed


def _may_see(core: Core, incident_id: int, user: str) -> bool:
    try:
        authorize(core, incident_id, user, "see")
    except DomainError:
        return False
    return True


def status_view(core: Core, incident_id: int) -> IncidentView:
    with core.db.read() as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise NotFound(f"There is no incident {ref(incident_id)}.")
        return load_view(core, session, incident)


def incident_facts(core: Core, incident_id: int) -> tuple[str, list[str]]:
    """The incident's severity and its playbook's roles (what the update, page and assign forms offer)."""
    with core.db.read() as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise NotFound(f"There is no incident {ref(incident_id)}.")
        playbook = core.playbooks.get(incident.playbook_id)
        return incident.severity, list(playbook.roles) if playbook else []
