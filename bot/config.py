"""The organisation config (``safeguard.yaml``): roles and who fills them, how each role is
paged and escalated, people's names and e-mail addresses, incident leads, pager backends,
status-update cadence and page-delivery retries.

Every model forbids unknown keys. ``load_config`` reports every problem of the file at once,
each with its line and field. Cross-checks (a level that notifies by e-mail needs the e-mail
pager and an address for each user it pages, …) run on the raw YAML too, so they are reported
together with type errors, at the exact place they concern.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field as PydanticField
from pydantic import (
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from .config_types import (  # noqa: F401 (re-exported: playbooks and tests import them from here)
    DEFERRED,
    EMAIL,
    ENV_NAME,
    OWNER,
    ROLE_NAME,
    USER_ID,
    USERGROUP_ID,
    ConfigRoleName,
    EmailAddress,
    EnvName,
    HttpUrl,
    RoleName,
    SlackChannelId,
    SlackUserId,
    StrictModel,
    Text,
    UsergroupId,
    _unique,
    check_role_name,
    deferred,
)
from .durations import Duration
from .paging.registry import PAGER_KINDS
from .yamlsrc import (
    ConfigError,
    Loc,
    Source,
    format_loc,
    load_yaml,
    sort_problems,
    validation_problems,
)

Severity = Literal["sev1", "sev2", "sev3"]
SEVERITIES: tuple[str, ...] = ("sev1", "sev2", "sev3")
PAGER_CHANNELS: tuple[str, ...] = tuple(PAGER_KINDS)
Channel = Literal[("slack", *PAGER_CHANNELS)]  # type: ignore[valid-type]




# --- models --------------------------------------------------------------------------------


class EscalationLevel(StrictModel):
    """One level of a role's escalation policy: who is notified how, and how long they have."""

    notify: list[Channel] = PydanticField(min_length=1)
    ack_within: Duration
    users: list[SlackUserId] | None = PydanticField(default=None, min_length=1)
    """Who this level pages; None means the role's users."""

    @field_validator("notify", "users")
    @classmethod
    def _no_repeats(cls, value: list[str] | None) -> list[str] | None:
        _unique(value, "value")
        return value


DEFAULT_ACK_WITHIN = timedelta(minutes=15)


class RoleConfig(StrictModel):
    label: str = ""
    """Shown to people; defaults to the role name with spaces (``eu_counsel`` → Eu counsel)."""
    users: list[SlackUserId] = []
    """Slack user ids; the first is the primary, assigned at declaration."""
    usergroup: UsergroupId | None = None
    escalation: list[EscalationLevel] = []

    @field_validator("users")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        _unique(value, "user")
        return value

    @property
    def primary(self) -> str | None:
        return self.users[0] if self.users else None

    @property
    def levels(self) -> list[EscalationLevel]:
        """The escalation policy, or one Slack level (ack within 15m) when none is configured."""
        return self.escalation or [EscalationLevel(notify=["slack"], ack_within=DEFAULT_ACK_WITHIN)]

    def level_users(self, level: EscalationLevel) -> list[str]:
        """The users a level pages: its own list, or the role's users."""
        return list(level.users) if level.users is not None else list(self.users)


class Person(StrictModel):
    name: str | None = None
    email: EmailAddress | None = None


class _PagerSections(StrictModel):
    def configured(self) -> list[str]:
        return [name for name in PAGER_CHANNELS if getattr(self, name) is not None]


# One optional section per pager kind of the registry (bot/paging/registry.py).
Pagers = create_model(
    "Pagers", __base__=_PagerSections,
    **{name: (kind.config | None, None) for name, kind in PAGER_KINDS.items()},
)


class Delivery(StrictModel):
    """Page delivery retries: attempt n waits ``first_retry * 2**(n-2)`` after attempt n-1."""

    max_attempts: int = PydanticField(default=5, ge=1, le=100)
    first_retry: Duration = timedelta(seconds=2)


# --- permissions -----------------------------------------------------------------------------

ANYONE, MEMBER, LEADS = "anyone", "member", "leads"
PERMISSION_WORDS: tuple[str, ...] = (ANYONE, MEMBER, OWNER, LEADS)
"""Words of a permission list besides role ids: anyone; a member of the incident channel; a
holder of the step's owner role (``owner``, for steps); the config's ``leads``."""


def _words(*words: str):
    return PydanticField(default_factory=lambda: list(words), min_length=1)


class Permissions(StrictModel):
    """Who may do what, in every incident; the core checks it on every change, whoever asks.
    The actions are the extension point of the role policy: one field each."""

    declare: list[str] = _words(ANYONE)
    step: list[str] = _words(OWNER, "incident_lead", "deputy")
    """done / skip / undo; a playbook step may narrow it with ``who:``."""
    assign: list[str] = _words("incident_lead", "deputy", LEADS)
    severity: list[str] = _words("incident_lead", "deputy", LEADS)
    resolve: list[str] = _words("incident_lead", LEADS)
    close: list[str] = _words("incident_lead", LEADS)
    note: list[str] = _words(MEMBER, LEADS)
    page: list[str] = _words(MEMBER, LEADS)
    export: list[str] = _words(MEMBER, LEADS)
    viewed: list[str] = _words(MEMBER, LEADS)
    """`/incident viewed`: log content viewed for the incident (each person only for themselves)."""

    @field_validator("*")
    @classmethod
    def _known_words(cls, value: list[str]) -> list[str]:
        for word in value:
            if word not in PERMISSION_WORDS:
                check_role_name(word)
        _unique(value, "word")
        return value

    def allowed(self, action: str) -> list[str]:
        return list(getattr(self, action))


PERMISSION_ACTIONS: tuple[str, ...] = tuple(Permissions.model_fields)


# --- wellbeing -------------------------------------------------------------------------------


class Wellbeing(StrictModel):
    """Exposure limits and breaks for the people who view content (DESIGN.md, "Wellbeing")."""

    viewers: list[RoleName] = PydanticField(default_factory=lambda: ["child_safety_specialist"])
    """Roles whose work exposes them to content (assignment spreads their load)."""
    daily_limit: Duration = timedelta(hours=4)  # INHOPE's advice for hotline analysts
    weekly_limit: Duration = timedelta(hours=16)
    break_every: Duration = timedelta(hours=1)  # IWF: hourly breaks
    break_length: Duration = timedelta(minutes=15)
    stewards: list[SlackUserId] = []
    """Besides the person, who may see individual figures."""
    retention: Duration = timedelta(days=90)

    @field_validator("viewers", "stewards")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        _unique(value, "value")
        return value


class Announcements(StrictModel):
    """A team channel told, in one content-free line, when an incident is declared, updated,
    resolved or closed: its number, playbook, severity, lead and state, never its summary."""

    channel: SlackChannelId
    """The channel's id (the bot must be a member of it)."""


def _default_status_updates() -> dict[str, timedelta]:
    return {"sev1": timedelta(minutes=30)}


class OrgConfig(StrictModel):
    roles: dict[ConfigRoleName, RoleConfig] = {}
    people: dict[SlackUserId, Person] = {}
    """Names and e-mail addresses by Slack user id."""
    leads: list[SlackUserId] = []
    """Incident leads: may act on and export any incident, even outside its channel."""
    pagers: Pagers = PydanticField(default_factory=Pagers)
    status_updates: dict[Severity, Duration] = PydanticField(
        default_factory=_default_status_updates
    )
    archive_on_close: bool = True
    delivery: Delivery = PydanticField(default_factory=Delivery)
    permissions: Permissions = PydanticField(default_factory=Permissions)
    wellbeing: Wellbeing = PydanticField(default_factory=Wellbeing)
    announcements: Announcements | None = None

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> OrgConfig:
        for name, role in self.roles.items():
            if not role.label:
                role.label = name.replace("_", " ").capitalize()
        if not deferred(info):
            found = config_problems(self.model_dump(by_alias=True, exclude_unset=True))
            if found:
                raise ValueError("; ".join(f"{format_loc(loc)}: {msg}" for loc, msg in found))
        return self

    @property
    def role_names(self) -> list[str]:
        return sorted(self.roles)

    def person(self, user_id: str) -> Person | None:
        return self.people.get(user_id)

    def email_of(self, user_id: str) -> str | None:
        person = self.people.get(user_id)
        return person.email if person else None

    def name_of(self, user_id: str) -> str | None:
        person = self.people.get(user_id)
        return person.name if person else None

    def is_lead(self, user_id: str) -> bool:
        return user_id in self.leads


# --- cross-checks --------------------------------------------------------------------------


def _items(value: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict):
                yield index, item


def config_problems(data: Any) -> list[tuple[Loc, str]]:
    """Cross-checks on raw config data (tolerant of wrong types: those are pydantic's job)."""
    if not isinstance(data, dict):
        return []
    found: list[tuple[Loc, str]] = []
    found.extend(_permission_problems(data))
    pagers = data.get("pagers") if isinstance(data.get("pagers"), dict) else {}
    people = data.get("people") if isinstance(data.get("people"), dict) else {}
    roles = data.get("roles") if isinstance(data.get("roles"), dict) else {}
    for name, role in roles.items():
        if not isinstance(role, dict):
            continue
        role_users = role.get("users") if isinstance(role.get("users"), list) else []
        for index, level in _items(role.get("escalation")):
            where: Loc = ("roles", name, "escalation", index)
            notify = level.get("notify") if isinstance(level.get("notify"), list) else []
            for n, channel in enumerate(notify):
                if channel in PAGER_CHANNELS and pagers.get(channel) is None:
                    found.append((
                        (*where, "notify", n),
                        f"level {index + 1} notifies by {channel}, but pagers.{channel} is not configured",
                    ))
            own = level.get("users")
            users_loc: Loc = (*where, "users") if own is not None else ("roles", name, "users")
            users = own if isinstance(own, list) else role_users
            if own is None and not role_users:
                found.append((
                    where,
                    f"level {index + 1} pages nobody: the role has no users and the level lists none",
                ))
            if "email" in notify:
                for k, user in enumerate(users):
                    if not (isinstance(user, str) and USER_ID.match(user)):
                        continue  # reported as a bad user id
                    person = people.get(user)
                    if not (isinstance(person, dict) and person.get("email")):
                        found.append((
                            (*users_loc, k),
                            f"{user} has no email under people, but level {index + 1} of role "
                            f"{name!r} notifies by email",
                        ))
    return found


def _permission_problems(data: dict[str, Any]) -> list[tuple[Loc, str]]:
    """A role named in `permissions:` must be a configured role (a typo would lock people out)."""
    permissions = data.get("permissions")
    roles = data.get("roles") if isinstance(data.get("roles"), dict) else {}
    if not isinstance(permissions, dict):
        return []
    found: list[tuple[Loc, str]] = []
    for action, words in permissions.items():
        if not isinstance(words, list):
            continue
        for n, word in enumerate(words):
            if word == OWNER and action != "step":
                found.append((("permissions", action, n), f"{OWNER!r} means the owner of a step: only for step"))
            if not isinstance(word, str) or word in PERMISSION_WORDS or not ROLE_NAME.match(word):
                continue
            if word not in roles:
                known = ", ".join([*PERMISSION_WORDS, *sorted(roles)])
                found.append((("permissions", action, n), f"unknown role {word!r} (use one of: {known})"))
    return found


# --- loading -------------------------------------------------------------------------------


def validate_config(source: Source) -> OrgConfig:
    """Validate parsed YAML; raise ConfigError listing every problem, in line order."""
    data = source.data
    if data is None:
        return OrgConfig()
    if not isinstance(data, dict):
        raise ConfigError([source.problem((), "the config must be a mapping (roles: …, pagers: …)")])
    problems = [source.problem(loc, message) for loc, message in config_problems(data)]
    config = None
    try:
        config = OrgConfig.model_validate(data, context={DEFERRED: True})
    except ValidationError as exc:
        problems.extend(validation_problems(exc, source, OrgConfig))
    if problems or config is None:
        raise ConfigError(sort_problems(problems))
    return config


def load_config(path: str | os.PathLike[str] | None = None) -> OrgConfig:
    """Load the organisation config. ``None`` gives the empty config (no roles, no pagers, the
    default status-update cadence); a path that does not exist is an error. Raises ConfigError."""
    if path is None:
        return OrgConfig()
    return validate_config(load_yaml(Path(path)))
