"""The announcement channel (config `announcements.channel`): one content-free line when an
incident is declared, gets a status update, is resolved or closed. Number, playbook title,
severity, lead and what happened; never the summary, an update's words or anyone's notes.
A restricted incident's lead is not named either: the channel is wider than the people let in,
and who works a CSAM case is theirs to tell (the line says the lead is restricted)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..clocks.outbox import enqueue
from ..core import Core
from ..db.models import Incident
from . import ref
from .views import role_holders

WORDS = ("declared", "updated", "severity", "resolved", "closed")


def announce(core: Core, session: Session, incident: Incident, word: str, *, lead: str | None = None) -> None:
    config = core.config.announcements
    if config is None:
        return
    assert word in WORDS, word
    playbook = core.playbooks.get(incident.playbook_id)
    restricted = bool(playbook and playbook.restricted)
    leads = [] if restricted else [lead] if lead else role_holders(session, incident.id).get("incident_lead", [])
    text = core.render.text("slack/announcement.txt.j2", ref=ref(incident.id), number=incident.id,
                            playbook_title=playbook.title if playbook else incident.playbook_id,
                            severity=incident.severity, leads=leads, restricted=restricted, word=word, channel_id=incident.channel_id)
    enqueue(session, "post", {"channel": config.channel, "text": text}, incident_id=incident.id)
