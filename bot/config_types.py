"""Field types shared by the config models (the organisation config, playbooks, and each pager's
section, which lives next to its backend in bot/paging/): strict models and validated strings."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo

OWNER = "owner"  # the special remind target of a playbook timer: the step's owner role
DEFERRED = "safeguard_deferred_checks"  # validation context flag: the loader runs the checks

USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
USERGROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
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


def _channel_id(value: str) -> str:
    if not CHANNEL_ID.match(value):
        raise ValueError(f"{value!r} is not a Slack channel id (like C0123ABCD; the id, not the #name)")
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
SlackChannelId = Annotated[str, AfterValidator(_channel_id)]
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
