"""The one registry of playbook field types: how a value is checked and cleaned, and which Block
Kit element the step's form uses for it. A playbook's `type:` choices come from here, so adding
a field type is one entry (and, for a new kind of element, its line in step_modal.json.j2)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

USER_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$|^([UW][A-Z0-9]{2,})$")


@dataclass(frozen=True)
class FieldType:
    name: str
    clean: Callable[[Any, str], str]  # (field, value) -> the value to record; ValueError says why not
    element: str  # static_select | plain_text_input | users_select


def _select(field, value: str) -> str:
    """An option in any case (`a1` is `A1`), recorded as the playbook spells it."""
    for option in field.options:
        if option.casefold() == value.casefold():
            return option
    raise ValueError(f"Choose one of: {', '.join(field.options)}.")


def _text(field, value: str) -> str:
    if field.pattern and not re.search(field.pattern, value):
        raise ValueError(f"{field.label}: {field.pattern_hint}" if field.pattern_hint
                         else f"{field.label} must match `{field.pattern}`.")
    return value


def _user(field, value: str) -> str:
    match = USER_MENTION.match(value)
    if not match:
        raise ValueError(f"{field.label} must be a Slack user.")
    return match.group(1) or match.group(2)


FIELD_TYPES: dict[str, FieldType] = {t.name: t for t in (
    FieldType("select", _select, "static_select"),
    FieldType("text", _text, "plain_text_input"),
    FieldType("user", _user, "users_select"),
)}
