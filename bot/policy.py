"""Who may do what: the organisation's `permissions:` applied to one person and one incident.

Every core function that changes an incident is declared with `@mutation(ACTION)`, which checks
the policy before the function runs, whoever asks (a Slack command, a button, a modal, the API).
`MUTATIONS` lists them all, so a test can try each as someone outside the policy.

Words of a permission list: `anyone`; `member` (of the incident channel); `owner` (a holder of
the step's owner role); `leads` (the config's leads); or a role id (a holder of that role in the
incident). Leads may see and reach every incident; what they may change is what the words say.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from .config import ANYONE, LEADS, MEMBER, OWNER
from .core import Core
from .db.models import Incident, Participant, RoleAssignment
from .errors import Forbidden, NotFound, SlackError
from .incidents import ref
from .metrics import FORBIDDEN
from .tokens import ACTOR_PREFIX, is_api_actor, scopes_of

F = TypeVar("F", bound=Callable[..., Any])

VERBS = {
    "see": "see {ref}",
    "declare": "declare {playbook} incidents",
    "step": "check off, skip or reopen “{step}”",
    "assign": "assign roles in {ref}",
    "severity": "change {ref}'s severity",
    "resolve": "resolve {ref}",
    "close": "close {ref}",
    "note": "add to {ref}'s timeline",
    "page": "page from {ref}",
    "export": "export {ref}'s timeline",
    "viewed": "log content viewed for {ref}",
}


@dataclass
class Standing:
    """What the policy knows of one person in one incident."""

    user: str
    lead: bool = False
    member: bool = False  # in the incident channel (as far as the bot knows)
    invited: bool = False  # Slack has been asked to add them (before that, Slack cannot know them)
    roles: set[str] = field(default_factory=set)  # roles held in this incident


@dataclass(frozen=True)
class Mutation:
    name: str
    action: str  # a permission action, or "ack" (only the people a page went to)
    function: Callable[..., Any]


MUTATIONS: dict[str, Mutation] = {}


def mutation(action: str, *, step: str | None = None) -> Callable[[F], F]:
    """Check the policy for `action` before the function runs. The function takes `core`, the
    acting user as `actor`, and (except for declare) the incident as `incident_id`; `step`
    names the parameter holding a step id, whose `who:` narrows the policy."""

    def wrap(fn: F) -> F:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def checked(*args: Any, **kwargs: Any) -> Any:
            given = signature.bind(*args, **kwargs).arguments
            authorize(given["core"], given.get("incident_id"), given["actor"], action,
                      step_id=given.get(step) if step else None, playbook_id=given.get("playbook_id"))
            return fn(*args, **kwargs)

        name = f"{fn.__module__}.{fn.__qualname__}"
        MUTATIONS[name] = Mutation(name, action, checked)
        return checked  # type: ignore[return-value]

    return wrap


def authorize(core: Core, incident_id: int | None, actor: str, action: str, *, step_id: str | None = None,
              playbook_id: str | None = None) -> None:
    """Raise Forbidden (naming who can) unless `actor` may do `action`; NotFound for no incident."""
    try:
        _authorize(core, incident_id, actor, action, step_id=step_id, playbook_id=playbook_id)
    except Forbidden:
        core.metrics.inc(FORBIDDEN, action=action)  # refusals are counted (never who asked)
        raise


def _authorize(core: Core, incident_id: int | None, actor: str, action: str, *, step_id: str | None = None,
               playbook_id: str | None = None) -> None:
    if action == "ack":  # acknowledging checks that the page went to the actor, in paging
        return
    if is_api_actor(actor):
        _authorize_token(core, incident_id, actor, action, step_id)
        return
    if action == "declare":
        _authorize_declare(core, actor, playbook_id)
        return
    if incident_id is None:
        raise NotFound("Name the incident (`INC-7`) or run this in its channel.")
    with core.db.read() as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise NotFound(f"There is no incident {ref(incident_id)}.")
        standing = standing_of(core, session, incident, actor)
        playbook = core.playbooks.get(incident.playbook_id)
        channel, restricted = incident.channel_id, bool(playbook and playbook.restricted)
    step = None
    if step_id is not None and playbook is not None and playbook.has_step(step_id):
        step = playbook.step(step_id)
    words = [MEMBER, LEADS] if action == "see" else permitted(core, action, step)
    # Removed from the channel and the event lost: Slack knows (asked at most once a minute per
    # person and channel; when Slack does not answer, the bot's record stands).
    if standing.member and standing.invited and not standing.lead and channel \
            and not _still_in_slack(core, channel, actor):
        from .incidents.people import left

        left(core, channel, actor, source="verified")
        standing.member, standing.roles = False, set()
    # Added to the channel by hand and the event not (yet) heard: Slack knows.
    if not standing.member and not standing.lead and channel and _member_in_slack(core, channel, actor):
        from .incidents.people import joined

        joined(core, channel, actor, None)
        with core.db.read() as session:
            standing = standing_of(core, session, session.get(Incident, incident_id), actor)
    # A restricted channel is for the holders of the playbook's roles (and roles given in the
    # incident): someone added by hand, whatever else the config says they do, is not let in.
    if restricted:
        standing.roles &= set(playbook.roles) | assigned_roles(core, incident_id)
    if not (standing.member or standing.lead) or (restricted and not (standing.roles or standing.lead)):
        raise Forbidden(f"Only members of {ref(incident_id)}'s channel"
                        + (" who hold one of its roles" if restricted else "")
                        + " and the incident leads can do that. Ask the incident lead to add you.")
    if not allows(words, standing, step):
        raise Forbidden(refusal(core, action, words, incident_id, step))


# What an API token's scopes let it do (the role policy for tokens). Anything else (assign,
# severity, resolve, close, page, ack) is for people in Slack.
TOKEN_SCOPES = {"declare": "declare", "see": "read", "export": "read", "step": "update", "note": "update",
                "viewed": "exposure"}


def _authorize_token(core: Core, incident_id: int | None, actor: str, action: str, step_id: str | None) -> None:
    """A token (`api:NAME`) may do what its scopes say, in any incident; a revoked token nothing.
    A step narrowed by `who:` is for the people holding those roles, never for a token."""
    scopes = scopes_of(core.db, actor)
    if scopes is None:
        raise Forbidden(f"The token {actor[len(ACTOR_PREFIX):]!r} is revoked or unknown.")
    needed = TOKEN_SCOPES.get(action)
    if needed is None:
        raise Forbidden(f"Only people in Slack can {VERBS[action].format(ref='incidents', step='steps', playbook='')}"
                        "; an API token cannot.")
    if needed not in scopes:
        raise Forbidden(f"This token lacks the `{needed}` scope (it has: {', '.join(scopes) or 'none'}).")
    if incident_id is None:
        if action not in ("declare", "viewed", "see"):  # "see" without one: finding incidents
            raise NotFound("Name the incident.")
        return
    with core.db.read() as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise NotFound(f"There is no incident {ref(incident_id)}.")
        playbook = core.playbooks.get(incident.playbook_id)
    if action == "step" and step_id is not None and playbook is not None and playbook.has_step(step_id):
        step = playbook.step(step_id)
        if step.who:
            raise Forbidden(f"Only {describe(core, list(step.who), step)} can check off, skip or reopen "
                            f"“{step.title}”; an API token cannot. Nothing was changed.")


def permitted(core: Core, action: str, step=None) -> list[str]:
    """The words that may do `action` (a step's `who:` replaces the `step` list)."""
    if action == "step" and step is not None and step.who:
        return list(step.who)
    return core.config.permissions.allowed(action)


def allows(words: list[str], standing: Standing, step=None) -> bool:
    for word in words:
        if word == ANYONE:
            return True
        if word == LEADS and standing.lead:
            return True
        if word == MEMBER and standing.member:
            return True
        if word == OWNER and step is not None and step.owner in standing.roles:
            return True
        if word in standing.roles:
            return True
    return False


def standing_of(core: Core, session: Session, incident: Incident, user: str) -> Standing:
    standing = Standing(user=user, lead=core.is_lead(user))
    participant = session.scalars(select(Participant).where(
        Participant.incident_id == incident.id, Participant.user_id == user)).first()
    standing.member = participant is not None and participant.left_at is None
    standing.invited = participant is not None and participant.invited_at is not None
    standing.roles = set(session.scalars(select(RoleAssignment.role).where(
        RoleAssignment.incident_id == incident.id, RoleAssignment.user_id == user)))
    if standing.member:
        # Invited for a role (its configured people, its user group) or configured in one.
        if participant.reason.startswith("role:"):
            standing.roles.add(participant.reason[5:])
        standing.roles.update(name for name, role in core.config.roles.items() if user in role.users)
    else:
        standing.roles.clear()  # someone who left holds nothing here until they are back
    return standing


def assigned_roles(core: Core, incident_id: int) -> set[str]:
    with core.db.read() as session:
        return set(session.scalars(select(RoleAssignment.role).where(RoleAssignment.incident_id == incident_id)))


def holds_playbook_role(core: Core, playbook, user: str) -> bool:
    """Whether `user` is configured for one of the playbook's roles (users or user group)."""
    for role in playbook.roles:
        cfg = core.config.roles.get(role)
        if cfg is None:
            continue
        if user in cfg.users:
            return True
        if cfg.usergroup and core.gateway is not None:
            try:
                if user in core.gateway.usergroup_members(cfg.usergroup):
                    return True
            except SlackError:
                continue
    return False


def _authorize_declare(core: Core, actor: str, playbook_id: str | None) -> None:
    words = core.config.permissions.allowed("declare")
    if ANYONE in words or (LEADS in words and core.is_lead(actor)):
        return
    configured = {name for name, role in core.config.roles.items() if actor in role.users}
    if configured & set(words):
        return
    playbook = core.playbooks.get(playbook_id or "")
    raise Forbidden(refusal(core, "declare", words, None, None, playbook.title if playbook else "these"))


def refusal(core: Core, action: str, words: list[str], incident_id: int | None, step=None,
            playbook: str = "") -> str:
    who = describe(core, words, step)
    what = VERBS[action].format(ref=ref(incident_id) if incident_id else "", step=step.title if step else "",
                                playbook=playbook)
    return f"Only {who} can {what}. Nothing was changed."


def describe(core: Core, words: list[str], step=None) -> str:
    names = []
    for word in words:
        if word == ANYONE:
            return "anyone"
        if word == MEMBER:
            names.append("members of the incident channel")
        elif word == LEADS:
            names.append("the incident leads")
        elif word == OWNER:
            names.append(f"the step's owner ({core.role_label(step.owner)})" if step else "the step's owner")
        else:
            names.append(f"the {core.role_label(word)}")
    names = list(dict.fromkeys(names))
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


MEMBERSHIP_TTL = 60.0  # seconds a confirmation from Slack that someone is in a channel holds


def _still_in_slack(core: Core, channel: str, user: str) -> bool:
    key, now = (channel, user), time.monotonic()
    if now - core.membership_seen.get(key, float("-inf")) < MEMBERSHIP_TTL:
        return True
    members = _slack_members(core, channel)
    if members is None:  # Slack cannot be asked: the bot's record stands
        return True
    if user not in members:
        return False
    if len(core.membership_seen) > 100_000:
        core.membership_seen.clear()
    core.membership_seen[key] = now
    return True


def _member_in_slack(core: Core, channel: str, user: str) -> bool:
    members = _slack_members(core, channel)
    return members is not None and user in members


def _slack_members(core: Core, channel: str) -> list[str] | None:
    """The channel's members as Slack has them; None when Slack cannot be asked."""
    if core.gateway is None:
        return None
    try:
        return core.gateway.members(channel)
    except SlackError:
        return None
