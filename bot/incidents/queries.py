"""Finding incidents and deciding who may act on them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.errors import SlackError

from ..core import Core
from ..db.models import Incident, Participant
from ..errors import Forbidden, NotFound
from . import parse_ref, ref
from .views import IncidentView, load_view


def people_joined(core: Core, channel: str, user: str, inviter: str | None) -> None:
    from .people import joined

    joined(core, channel, user, inviter)


@dataclass(frozen=True)
class ListedIncident:
    number: int
    ref: str
    title: str
    severity: str
    playbook_title: str
    channel_id: str | None
    declared_at: datetime


def by_channel(session: Session, channel_id: str | None) -> Incident | None:
    if not channel_id:
        return None
    return session.scalars(select(Incident).where(Incident.channel_id == channel_id)).first()


def resolve_incident(session: Session, *, channel_id: str | None, text: str | None = None) -> Incident:
    """The incident of this channel, or the one named (`INC-7`, `7`)."""
    if text:
        number = parse_ref(text)
        incident = session.get(Incident, number) if number else None
        if incident is None:
            raise NotFound(f"There is no incident {text}.")
        return incident
    incident = by_channel(session, channel_id)
    if incident is None:
        raise NotFound("This is not an incident channel. Run the command in the incident's channel, "
                       "or see `/incident list`.")
    return incident


def incident_number_for_channel(core: Core, channel_id: str | None) -> int | None:
    with core.db.read() as session:
        incident = by_channel(session, channel_id)
        return incident.id if incident else None


def is_participant(session: Session, incident_id: int, user: str) -> bool:
    return session.scalars(
        select(Participant.id).where(Participant.incident_id == incident_id, Participant.user_id == user,
                                     Participant.left_at.is_(None))
    ).first() is not None


def check_access(core: Core, incident_id: int, user: str) -> None:
    """Members of the incident channel and the configured leads may act; nobody else."""
    if core.is_lead(user):
        return
    with core.db.read() as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise NotFound(f"There is no incident {ref(incident_id)}.")
        if is_participant(session, incident_id, user):
            return
        channel = incident.channel_id
    # Someone a person added to the channel by hand: Slack knows, the database may not yet.
    if channel and core.gateway is not None:
        try:
            members = core.gateway.members(channel)
        except SlackError:
            members = []
        if user in members:
            people_joined(core, channel, user, None)
            return
    raise Forbidden(f"Only members of {ref(incident_id)}'s channel and the incident leads can do that. "
                    "Ask the incident lead to add you.")


def list_open(core: Core, user: str) -> list[ListedIncident]:
    with core.db.read() as session:
        query = select(Incident).where(Incident.status != "closed").order_by(Incident.id)
        if not core.is_lead(user):
            mine = select(Participant.incident_id).where(Participant.user_id == user, Participant.left_at.is_(None))
            query = query.where((Incident.private.is_(False)) | Incident.id.in_(mine))
        rows = list(session.scalars(query))
        return [
            ListedIncident(i.id, ref(i.id), i.title, i.severity,
                           core.playbooks[i.playbook_id].title if i.playbook_id in core.playbooks else i.playbook_id,
                           i.channel_id, i.declared_at)
            for i in rows
        ]


def status_view(core: Core, incident_id: int) -> IncidentView:
    with core.db.read() as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise NotFound(f"There is no incident {ref(incident_id)}.")
        return load_view(core, session, incident)
