"""A declaration that repeats an open incident: asked about before anything is created.

Two declarations are the same incident when they are for the same playbook and either
* their summaries are equal once normalised (case, punctuation and spacing ignored), or
* they share an evidence reference the summary carries: a hash (32, 40 or 64 hex digits: MD5,
  SHA-1, SHA-256), a link (http/https, compared without the scheme and a trailing slash), or an
  id shaped like `CASE-881` / `report_123` (letters, then `-`, `_` or `#`, then 3+ digits;
  incident refs `INC-N` are not evidence).
Only open (not closed) incidents count. The person is then offered to join that incident
(through the policy) or to declare a new one anyway.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import select

from ..clocks.now import utcnow
from ..clocks.outbox import enqueue
from ..core import Core
from ..db.models import Incident, Participant, RoleAssignment
from ..errors import Forbidden, InvalidInput, NotFound
from ..outcomes import Outcome
from ..policy import authorize, holds_playbook_role, mutation
from ..timeline.store import append, lock_incident
from . import ref
from .checklist import request_refresh

_HASH = re.compile(r"\b[0-9a-fA-F]{64}\b|\b[0-9a-fA-F]{40}\b|\b[0-9a-fA-F]{32}\b")
_LINK = re.compile(r"https?://[^\s<>|]+", re.I)
_ID = re.compile(r"\b([A-Za-z][A-Za-z0-9]*)[-_#](\d{3,})\b")


def normalised(summary: str) -> str:
    text = unicodedata.normalize("NFKC", summary).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def references(summary: str) -> set[str]:
    """The evidence references a summary carries, in a comparable form."""
    found = {h.lower() for h in _HASH.findall(summary)}
    found |= {link.split("://", 1)[1].rstrip("/.,;)").lower() for link in _LINK.findall(summary)}
    without_links = _LINK.sub(" ", summary)
    found |= {f"{p.lower()}-{n}" for p, n in _ID.findall(without_links) if p.lower() != "inc"}
    return found


_SAME = "same summary"


_GUESSABLE = re.compile(r"[a-z][a-z0-9]*-\d+")


def vouches_for_access(why: str) -> bool:
    """Whether a repeat shows the person holds the same material: the same summary, a hash or a
    link. A short id (`CASE-100`) does not: it can be guessed by trying, and must not open a
    private channel to whoever tries."""
    return why == _SAME or not _GUESSABLE.fullmatch(why)


def repeated_by(existing: str, summary: str) -> str | None:
    """Why `summary` repeats an incident summarised `existing`: the shared reference, or
    "same summary"; None when it does not."""
    if normalised(existing) == normalised(summary):
        return _SAME
    shared = sorted(references(summary) & references(existing))
    return shared[0] if shared else None


@dataclass(frozen=True)
class Repeat:
    number: int
    ref: str
    playbook_title: str
    severity: str
    matched: str | None  # the shared reference, or None for the same summary
    summary: str | None  # only when the person may see the incident
    lead: str | None  # likewise


def find_repeat(core: Core, playbook_id: str, summary: str, actor: str) -> Repeat | None:
    """The oldest open incident of `playbook_id` that `summary` repeats, or None. Only for someone
    who may declare the playbook (Forbidden otherwise): the question names an incident."""
    from .queries import _may_see

    authorize(core, None, actor, "declare", playbook_id=playbook_id)

    with core.db.read() as session:
        candidates = list(session.scalars(select(Incident).where(
            Incident.playbook_id == playbook_id, Incident.status != "closed").order_by(Incident.id)))
        for incident in candidates:
            why = repeated_by(incident.title or "", summary)
            if why is None:
                continue
            matched = None if why == _SAME else why
            lead = session.scalars(select(RoleAssignment.user_id).where(
                RoleAssignment.incident_id == incident.id, RoleAssignment.role == "incident_lead")).first()
            number, title, severity = incident.id, incident.title, incident.severity
            break
        else:
            return None
    playbook = core.playbooks.get(playbook_id)
    sees = _may_see(core, number, actor)
    return Repeat(number, ref(number), playbook.title if playbook else playbook_id, severity, matched,
                  title if sees else None, lead if sees else None)


@mutation("declare")
def join_repeat(core: Core, *, incident_id: int, actor: str, playbook_id: str, summary: str) -> Outcome:
    """Join an open incident instead of declaring it again. Whoever may declare the playbook may
    join, except that a restricted incident's channel takes only the holders of its roles and the
    leads (as a declaration would), and a private one takes others only when the repeat is the
    same summary, a hash or a link (not a guessable id like CASE-100): anyone else's report is recorded, and they are told no more
    than the question told them (not its lead: who works a restricted case is for its members)."""
    summary = " ".join((summary or "").split())[:500]
    with core.db.tx() as session:
        lock_incident(session, incident_id)
        incident = session.get(Incident, incident_id)
        if incident is None or incident.playbook_id != playbook_id:
            raise NotFound(f"There is no open {playbook_id} incident {ref(incident_id)}.")
        if incident.status == "closed":
            raise InvalidInput(f"{ref(incident_id)} was closed meanwhile: declare a new one if this is still going on.")
        why = repeated_by(incident.title or "", summary)
        if why is None:  # a forged or stale button
            raise Forbidden(f"Only someone declaring {ref(incident_id)} again can join it this way. Nothing was "
                            "changed; ask its lead to add you.")
        playbook = core.playbook(incident.playbook_id)
        insider = core.is_lead(actor) or holds_playbook_role(core, playbook, actor)
        # A restricted channel takes only its roles' holders and the leads; a private one takes
        # someone else only on evidence that they hold the same material (not a guessable id).
        may_join = insider or not (playbook.restricted or (incident.private and not vouches_for_access(why)))
        participant = session.scalars(select(Participant).where(
            Participant.incident_id == incident_id, Participant.user_id == actor)).first()
        data = {"user": actor, "summary": summary, "joined": may_join}
        if not may_join:
            append(session, incident_id, "repeat_reported",
                   f"<@{actor}> reported the same again: {summary}", actor=actor, data=data)
            return Outcome("repeat_reported", incident_id, {})
        if participant is not None and participant.left_at is None:
            append(session, incident_id, "repeat_reported",
                   f"<@{actor}> reported the same again: {summary}", actor=actor, data=data)
            return Outcome("repeat_joined", incident_id, {"channel": incident.channel_id, "already": True})
        if participant is None:
            session.add(Participant(incident_id=incident_id, user_id=actor, reason="repeat", added_at=utcnow()))
        else:  # they had left: joining brings them back
            participant.left_at, participant.invited_at = None, None
        append(session, incident_id, "repeat_joined",
               f"<@{actor}> reported the same again and joined: {summary}", actor=actor, data=data)
        enqueue(session, "provision", {"incident": incident_id}, incident_id=incident_id,
                dedup_key=f"provision:{incident_id}")  # idempotent: invites whoever is not invited yet
        request_refresh(session, incident)
        channel = incident.channel_id
    core.dispatcher.kick()
    return Outcome("repeat_joined", incident_id, {"channel": channel, "already": False})
