"""Declaring an incident: one transaction writes the incident, its steps, its people, its
first timeline events, its first clocks and the Slack work to do; Slack comes after the ack."""

from __future__ import annotations

from dataclasses import dataclass

from ..clocks.now import utcnow
from ..clocks.outbox import enqueue
from ..core import Core
from ..db.models import Incident, Participant, RoleAssignment, StepState
from ..errors import InvalidInput, NotFound
from ..policy import holds_playbook_role, mutation
from ..suggest import no_such
from ..timeline.store import append
from . import ref

SEVERITIES = ("sev1", "sev2", "sev3")
MAX_SUMMARY = 500


@dataclass(frozen=True)
class Declared:
    number: int
    ref: str
    channel_name: str
    playbook_title: str
    severity: str
    joined: bool = True  # False: a restricted playbook's channel, which the declarer may not enter
    lead: str | None = None  # who holds incident_lead (whom to ask)


def channel_name(number: int, playbook_id: str) -> str:
    """`inc-7-csam-report`: the number and the playbook, never a person's identifier."""
    return f"inc-{number}-{playbook_id}"[:80]


def playbook_list(core: Core) -> str:
    return ", ".join(f"`{pid}`" for pid in sorted(core.playbooks))


def normalise_severity(value: str | None) -> str | None:
    """`2`, `sev2`, `SEV2`, `Sev 2` → `sev2`; None when it is none of the severities."""
    word = "".join((value or "").split()).lower()
    word = f"sev{word}" if word.isdigit() else word
    return word if word in SEVERITIES else None


def validate(core: Core, playbook_id: str, summary: str, severity: str | None = None):
    """Check a declaration without touching the database (so a listener can answer a mistake
    in its ack); returns the playbook, the cleaned summary and the severity."""
    playbook = core.playbooks.get(playbook_id)
    if playbook is None:
        raise NotFound(no_such("playbook", playbook_id, sorted(core.playbooks)))
    summary = " ".join(summary.split())
    if not summary:
        raise InvalidInput(
            f"Give a short summary: `/incident declare {playbook_id} what happened, with case ids` "
            f"(or `/incident declare` for the form). Playbooks: {playbook_list(core)}.",
            {"summary": "A summary is required."},
        )
    if len(summary) > MAX_SUMMARY:
        raise InvalidInput(f"Keep the summary under {MAX_SUMMARY} characters.", {"summary": "Too long."})
    severity = (severity or playbook.severity).lower()
    if severity not in SEVERITIES:
        raise InvalidInput(f"Severity must be one of {', '.join(SEVERITIES)}.", {"severity": "Unknown severity."})
    return playbook, summary, severity


@mutation("declare")
def declare(
    core: Core,
    *,
    playbook_id: str,
    summary: str,
    actor: str,
    severity: str | None = None,
    channel_id: str | None = None,
    response_url: str | None = None,
) -> Declared:
    playbook, summary, severity = validate(core, playbook_id, summary, severity)
    with core.db.tx() as session:
        _, result = write_incident(core, session, playbook, summary, severity, actor, channel_id=channel_id,
                                   response_url=response_url)
    core.dispatcher.kick()
    return result


def write_incident(core: Core, session, playbook, summary: str, severity: str, actor: str, *,
                   channel_id: str | None = None, external_id: str | None = None,
                   response_url: str | None = None) -> tuple[Incident, Declared]:
    """Write a validated declaration in the caller's transaction: the incident, its steps, its
    people, its first timeline events and clocks, and the Slack set-up to do (the outbox). The
    same for a declaration from Slack and from the API (whose token joins no channel)."""
    from ..clocks.arming import arm_clock
    from ..tokens import is_api_actor
    from .announce import announce

    user = actor
    by_api = is_api_actor(user)
    # A restricted playbook's channel holds only its roles' people and the leads (2258B(c)):
    # anyone else who declares is told the number and the lead, and is not added.
    joins = not by_api and (not playbook.restricted or core.is_lead(user) or holds_playbook_role(core, playbook, user))
    now = utcnow()
    incident = Incident(
        playbook_id=playbook.id, title=summary, severity=severity, status="open",
        private=playbook.private, declared_at=now, declared_by=user, declared_in=channel_id,
        external_id=external_id,
    )
    session.add(incident)
    session.flush()
    incident.channel_name = channel_name(incident.id, playbook.id)
    append(
        session, incident.id, "declared",
        f"{ref(incident.id)} declared: {summary}",
        actor=user,
        data={"playbook": playbook.id, "severity": severity, "summary": summary,
              "channel_name": incident.channel_name, "private": playbook.private,
              **({"external_id": external_id} if external_id else {})},
    )
    for position, step in enumerate(playbook.steps):
        session.add(StepState(
            incident_id=incident.id, step_id=step.id, position=position,
            state="waiting" if step.after else "active", values={},
        ))
    people = {user: "declarer"} if joins else {}
    if not joins and not by_api:
        append(session, incident.id, "declarer_not_added",
               "The declarer holds none of this restricted playbook's roles and was not added to the channel",
               actor=user, data={"user": user})
    for role in playbook.roles:
        role_cfg = core.config.roles.get(role)
        if role_cfg is None or not role_cfg.users:
            continue
        primary = role_cfg.users[0]
        session.add(RoleAssignment(incident_id=incident.id, role=role, user_id=primary,
                                   assigned_at=now, assigned_by=None))
        append(session, incident.id, "role_assigned",
               f"{core.role_label(role)}: <@{primary}> (from the organisation config)",
               data={"role": role, "user": primary, "source": "config"})
        for member in role_cfg.users:
            people.setdefault(member, f"role:{role}")
    for member, reason in people.items():
        session.add(Participant(incident_id=incident.id, user_id=member, reason=reason, added_at=now))
    arm_clock(core, session, incident, "declared")
    announce(core, session, incident, "declared")
    # The response_url lets provisioning replace the confirmation with the linked channel.
    provision = {"incident": incident.id, **({"response_url": response_url} if response_url else {})}
    enqueue(session, "provision", provision, incident_id=incident.id, dedup_key=f"provision:{incident.id}")
    lead = next((u for role, u in ((r, core.config.roles.get(r)) for r in playbook.roles)
                 if role == "incident_lead" and u and u.users), None)
    return incident, Declared(incident.id, ref(incident.id), incident.channel_name, playbook.title, severity,
                              joined=joins, lead=lead.users[0] if lead else None)
