"""Roles and people: assigning a role, and noticing who joined the channel."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select

from bot.errors import SlackError

from ..clocks.now import utcnow
from ..clocks.outbox import enqueue
from ..core import Core
from ..db.models import Incident, Participant, RoleAssignment
from ..errors import Forbidden, InvalidInput, NotFound
from ..outcomes import Outcome
from ..policy import mutation
from ..suggest import no_such
from ..timeline.store import append, lock_incident
from . import ref
from .checklist import request_refresh
from .queries import by_channel


def known_roles(core: Core, incident: Incident) -> list[str]:
    return sorted(set(core.config.roles) | set(core.playbook(incident.playbook_id).roles))


def guarded_role(core: Core, incident: Incident, role: str) -> bool:
    """A role that decides who sees the material: any role of a restricted playbook, and any
    role a step's `who:` names. Giving it to someone else would sidestep the policy."""
    playbook = core.playbook(incident.playbook_id)
    return (playbook.restricted and role in playbook.roles) or any(role in (s.who or []) for s in playbook.steps)


def in_pool(core: Core, role: str, user: str) -> bool:
    cfg = core.config.roles.get(role)
    if cfg is None:
        return False
    if user in cfg.users:
        return True
    if cfg.usergroup and core.gateway is not None:
        try:
            return user in core.gateway.usergroup_members(cfg.usergroup)
        except SlackError:
            return False
    return False


def _check_person(core: Core, user: str) -> None:
    """A role goes to a person who exists and can act: not a bot, not a deactivated account.
    When Slack cannot be asked, the assignment goes ahead and the invite says what happened."""
    if core.gateway is None:
        return
    try:
        person = core.gateway.person(user)
    except SlackError:
        return
    if person is None:
        raise InvalidInput(f"There is no user `{user}` in this workspace. Mention them: `@name`.")
    if person.get("deleted"):
        raise InvalidInput(f"<@{user}> is deactivated; assign someone who can act.")
    if person.get("is_bot") or user == core.gateway.bot_user_id():
        raise InvalidInput(f"<@{user}> is a bot; roles are for people.")


@mutation("assign")
def assign(core: Core, incident_id: int, actor: str, role: str, user: str | None = None,
           anyway: bool = False) -> Outcome:
    """Give `role` to `user`. With no user, pick one of the role's configured people (for a role
    whose work exposes them to content: under the limits, not on a break, least exposure this week,
    then least recently assigned). Naming someone of such a role who reached a limit or is on a
    break is refused unless `anyway` (then recorded as an override)."""
    from .. import wellbeing

    viewer = wellbeing.is_viewer_role(core, role)
    why = None
    if user is not None:
        _check_person(core, user)
        people = [user] if viewer else []
    else:
        cfg = core.config.roles.get(role)
        people = list(cfg.users) if cfg else []
    tzs = {person: wellbeing.tz_of(core, person) for person in people} if viewer else {}
    with core.db.tx() as session:
        lock_incident(session, incident_id)
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise NotFound(f"There is no incident {ref(incident_id)}.")
        if incident.status == "closed":
            raise InvalidInput(f"{ref(incident_id)} is closed.")
        roles = known_roles(core, incident)
        if role not in roles:
            raise InvalidInput(no_such("role", role, roles))
        if user is not None and guarded_role(core, incident, role) and not in_pool(core, role, user):
            raise Forbidden(f"{core.role_label(role)} in {ref(incident_id)} goes only to the people configured for it "
                            f"(roles.{role}.users or its user group in the organisation config): its holders see "
                            "what this incident holds, and that circle is kept small (18 U.S.C. 2258B(c)).")
        previous = list(session.scalars(select(RoleAssignment.user_id).where(
            RoleAssignment.incident_id == incident_id, RoleAssignment.role == role)))
        now = utcnow()
        if user is None:
            user, why = _pick(core, session, role, people, previous, tzs, viewer, now)
        elif viewer:
            reason = wellbeing.unavailable(wellbeing.figures(core, session, user, tzs[user], now))
            if reason and not anyway:
                raise InvalidInput(
                    f"<@{user}> {reason}, so should get no more viewing work now. Assign someone else "
                    f"(`/incident assign {role}` picks one), or `/incident assign {role} <@{user}> anyway` "
                    "to override; the override is recorded.")
            anyway = anyway and reason is not None
        else:
            anyway = False
        participant = session.scalars(select(Participant).where(Participant.incident_id == incident_id,
                                                                Participant.user_id == user)).first()
        gone = participant is not None and participant.left_at is not None
        if previous == [user] and not gone:  # (one who left is brought back below)
            raise InvalidInput(f"<@{user}> already holds {core.role_label(role)}.")
        session.execute(delete(RoleAssignment).where(RoleAssignment.incident_id == incident_id,
                                                     RoleAssignment.role == role))
        session.add(RoleAssignment(incident_id=incident_id, role=role, user_id=user, assigned_at=now,
                                   assigned_by=actor))
        data = {"role": role, "user": user, "previous": previous, "source": "assign"}
        if why:
            data.update(picked=True, why=why)
        if anyway:
            data["override"] = True
        append(session, incident_id, "role_assigned",
               f"{core.role_label(role)}: <@{user}>" + (" (assigned anyway, over a wellbeing limit or break)"
                                                        if anyway else ""), actor=actor, data=data)
        if participant is None or gone:
            if participant is None:
                session.add(Participant(incident_id=incident_id, user_id=user, reason=f"role:{role}",
                                        added_at=utcnow()))
            else:  # they had left the channel: the role brings them back
                participant.left_at, participant.invited_at = None, None
            # Provisioning is idempotent: it invites whoever is not invited yet.
            enqueue(session, "provision", {"incident": incident_id}, incident_id=incident_id,
                    dedup_key=f"provision:{incident_id}")
        request_refresh(session, incident)
    core.dispatcher.kick()
    return Outcome("role_assigned", incident_id, {"user": user, "role": role, "label": core.role_label(role),
                                                  "why": why, "override": anyway})


def _pick(core: Core, session, role: str, people: list[str], previous: list[str], tzs, viewer: bool,
          now) -> tuple[str, str]:
    """Someone for `role` among its configured people, other than who holds it now."""
    from .. import wellbeing

    candidates = [p for p in people if p not in previous]
    label = core.role_label(role)
    if not candidates:
        raise InvalidInput(f"Nobody else is configured for {label}: name someone, "
                           f"`/incident assign {role} @user`.")
    if viewer:
        chosen, why = wellbeing.pick(core, session, candidates, tzs, now)
        if chosen is None:
            raise InvalidInput(f"Nobody can be picked for {label}: {why}. Name someone with "
                               f"`/incident assign {role} @user anyway` if it cannot wait.")
        return chosen, why
    dated = sorted((wellbeing.last_assigned(session, p) or datetime.min.replace(tzinfo=UTC), n, p)
                   for n, p in enumerate(candidates))
    return dated[0][2], "assigned least recently of the people configured for it"


def _membership(session, channel_id: str, user: str) -> tuple[Incident | None, Participant | None]:
    """The incident of a channel (locked) and the user's participant row, either may be None."""
    incident = by_channel(session, channel_id)
    if incident is None:
        return None, None
    lock_incident(session, incident.id)
    participant = session.scalars(select(Participant).where(
        Participant.incident_id == incident.id, Participant.user_id == user)).first()
    return incident, participant


def joined(core: Core, channel_id: str, user: str, inviter: str | None, at: datetime | None = None) -> None:
    """Someone joined an incident channel (invited by the bot or by a person). `at` is when
    Slack says it happened: events can arrive out of order, and a join older than the
    person's last departure changes nothing."""
    if core.gateway is not None and user == core.gateway.bot_user_id():
        return
    with core.db.tx() as session:
        incident, participant = _membership(session, channel_id, user)
        if incident is None:
            return
        if participant is not None:
            if participant.invited_at is None:
                participant.invited_at = utcnow()
            if participant.left_at is not None and (at is None or at > participant.left_at):
                participant.left_at = None
                append(session, incident.id, "member_joined", f"<@{user}> rejoined the channel",
                       actor=inviter, data={"user": user, "inviter": inviter})
            return
        session.add(Participant(incident_id=incident.id, user_id=user, reason="joined", added_at=utcnow(),
                                invited_at=utcnow()))
        append(session, incident.id, "member_joined", f"<@{user}> joined the channel",
               actor=inviter, data={"user": user, "inviter": inviter})


def left(core: Core, channel_id: str, user: str, at: datetime | None = None, *, source: str = "event") -> None:
    """Someone left or was removed from an incident channel: they no longer act on it. `source`:
    the Slack event, or the bot's own check of the channel's members (`reconciled`, `verified`)."""
    _left(core, channel_id, user, at, source=source)


def _left(core: Core, channel_id: str, user: str, at: datetime | None, *, source: str) -> int:
    with core.db.tx() as session:
        incident, participant = _membership(session, channel_id, user)
        if participant is None or participant.left_at is not None:
            return 0
        participant.left_at = at or utcnow()
        how = " (found by checking the channel's members)" if source != "event" else ""
        append(session, incident.id, "member_left", f"<@{user}> left the channel{how}",
               data={"user": user, "source": source})
        return 1


RECONCILE_BATCH = 20  # conversations.members is Tier 4 (100+ a minute): a few channels a pass


def reconcile(core: Core) -> int:
    """Who is in each open incident channel, as Slack has it: departures whose event the bot
    missed (Slack gives up after three failed deliveries) are recorded, so nobody keeps acting
    on an incident they were removed from; people added by hand are recorded as joined. The
    channels checked longest ago go first. Returns how many changes were recorded."""
    if core.gateway is None:
        return 0
    with core.db.read() as session:
        open_channels = list(session.execute(
            select(Incident.id, Incident.channel_id).where(
                Incident.status != "closed", Incident.channel_id.is_not(None), Incident.archived.is_(False),
                Incident.provisioned_at.is_not(None)).order_by(Incident.id)))
    if not open_channels:
        return 0
    start = core.members_cursor % len(open_channels)
    batch = (open_channels[start:] + open_channels[:start])[:RECONCILE_BATCH]
    core.members_cursor = start + len(batch)
    bot, changed = core.gateway.bot_user_id(), 0
    for incident_id, channel in batch:
        try:
            members = set(core.gateway.members(channel))
        except SlackError:
            continue  # Slack is not answering: keep what is known, look again next pass
        with core.db.read() as session:
            rows = list(session.scalars(select(Participant).where(Participant.incident_id == incident_id)))
        known = {p.user_id: p.left_at for p in rows}
        invited = {p.user_id for p in rows if p.invited_at is not None}
        for user, left_at in known.items():
            # Someone not invited yet (provisioning is on its way) is not missing from the channel.
            if left_at is None and user in invited and user not in members and user != bot:
                changed += _left(core, channel, user, None, source="reconciled")
        for user in members - {bot}:
            if user not in known or known[user] is not None:
                joined(core, channel, user, None)
                changed += 1
    return changed
