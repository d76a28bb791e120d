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
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import Field as PydanticField

from .durations import Duration
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
Channel = Literal["slack", "pagerduty", "email", "webhook"]
PAGER_CHANNELS: tuple[str, ...] = ("pagerduty", "email", "webhook")

OWNER = "owner"  # the special remind target of a playbook timer: the step's owner role
DEFERRED = "safeguard_deferred_checks"  # validation context flag: the loader runs the checks

USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
USERGROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


# --- field types ---------------------------------------------------------------------------


def _user_id(value: str) -> str:
    if not USER_ID.match(value):
        raise ValueError(f"{value!r} is not a Slack user id (like U0123ABCD)")
    return value


def _usergroup_id(value: str) -> str:
    if not USERGROUP_ID.match(value):
        raise ValueError(f"{value!r} is not a Slack user group id (like S0123ABCD)")
    return value


def check_role_name(value: str) -> str:
    if not ROLE_NAME.match(value):
        raise ValueError(
            f"{value!r} is not a role name: use lowercase letters, digits and _ (like legal, eu_counsel)"
        )
    return value


def _config_role_name(value: str) -> str:
    check_role_name(value)
    if value == OWNER:
        raise ValueError(f"{OWNER!r} cannot name a role: playbooks use it for a step's owner")
    return value


def _env_name(value: str) -> str:
    if not ENV_NAME.match(value):
        raise ValueError(f"{value!r} is not an environment variable name (like PD_ROUTING_KEY)")
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


def _email(value: str) -> str:
    if not EMAIL.match(value):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


SlackUserId = Annotated[str, AfterValidator(_user_id)]
UsergroupId = Annotated[str, AfterValidator(_usergroup_id)]
RoleName = Annotated[str, AfterValidator(check_role_name)]
ConfigRoleName = Annotated[str, AfterValidator(_config_role_name)]
EnvName = Annotated[str, AfterValidator(_env_name)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
EmailAddress = Annotated[str, AfterValidator(_email)]
Text = Annotated[str, AfterValidator(_non_blank)]


def _unique(values: list[Any] | None, what: str) -> None:
    if values is None:
        return
    seen = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} {value!r} is listed twice")
        seen.add(value)


class StrictModel(BaseModel):
    """Unknown keys are errors; aliased keys (``from``) may also be given by name (``from_``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def deferred(info: ValidationInfo) -> bool:
    """True when the loader validates and runs the cross-checks itself (with exact lines)."""
    return bool(info.context and info.context.get(DEFERRED))


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


class PagerDutyConfig(StrictModel):
    events_url: HttpUrl = "https://events.pagerduty.com/v2/enqueue"
    routing_key_env: EnvName
    timeout: Duration = timedelta(seconds=10)


class EmailConfig(StrictModel):
    smtp_url_env: EnvName
    from_: EmailAddress = PydanticField(alias="from")
    timeout: Duration = timedelta(seconds=10)


class WebhookConfig(StrictModel):
    url: HttpUrl
    secret_env: EnvName
    """Names the variable holding the secret the webhook backend signs requests with."""
    timeout: Duration = timedelta(seconds=10)


class Pagers(StrictModel):
    pagerduty: PagerDutyConfig | None = None
    email: EmailConfig | None = None
    webhook: WebhookConfig | None = None

    def configured(self) -> list[str]:
        return [name for name in PAGER_CHANNELS if getattr(self, name) is not None]


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
