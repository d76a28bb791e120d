"""Parsing the text of `/incident …` (pure functions, tested on their own)."""

from __future__ import annotations

import re
import shlex

from bot.errors import InvalidInput

USER_RE = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")


def head_rest(text: str) -> tuple[str, str]:
    """The first word and the rest, split at any whitespace (a no-break space typed on a phone
    too): `"legal  Need a decision"` → ("legal", "Need a decision")."""
    parts = (text or "").strip().split(None, 1)
    return (parts[0], parts[1].strip()) if len(parts) == 2 else ((parts[0], "") if parts else ("", ""))


def split_command(text: str) -> tuple[str, str]:
    head, rest = head_rest(text)
    return (head.lower(), rest) if head else ("help", "")


def parse_user(token: str) -> str:
    match = USER_RE.match(token.strip())
    if match:
        return match.group(1)
    if re.fullmatch(r"[UW][A-Z0-9]{2,}", token.strip()):
        return token.strip()
    raise InvalidInput(f"`{token}` is not a Slack user: mention them, like `@ana`.")


def parse_fields(text: str) -> tuple[str, dict[str, str]]:
    """`STEP a=1 b="two words"` → ("STEP", {"a": "1", "b": "two words"})."""
    try:
        tokens = shlex.split(text)
    except ValueError as err:
        raise InvalidInput(f"Could not read the fields: {err}. Quote values with spaces: field=\"two words\".") from None
    if not tokens:
        raise InvalidInput("Name the step, like `/incident done confirm`. `/incident status` lists the steps.")
    step, values = tokens[0].lower(), {}  # ids are lowercase: `Confirm` means `confirm`
    for token in tokens[1:]:
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise InvalidInput(f"`{token}` is not `field=value`.")
        values[key] = value
    return step, values
