"""What every Web API method handler uses: errors, arguments, the call context."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..blockkit import iter_elements
from ..models import Channel
from ..workspace import Workspace


class ApiError(Exception):
    """Answer `{"ok": false, "error": code, **extra}` (HTTP 200)."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


class Args(dict):
    """Arguments of one call, merged from the query string, the form and the JSON body."""

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.get(name)
        if value is None:
            return default
        return value if isinstance(value, str) else str(value)

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float):
            return bool(value)
        lowered = str(value).strip().lower()
        if lowered in TRUE:
            return True
        if lowered in FALSE:
            return False
        raise ApiError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {name} must be a boolean"]})

    def optional_flag(self, name: str) -> bool | None:
        return None if self.get(name) is None else self.flag(name)

    def number(self, name: str, default: int | None = None) -> int | None:
        value = self.get(name)
        if value in (None, ""):
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ApiError("invalid_arguments") from None

    def structured(self, name: str) -> Any:
        """A JSON argument: JSON bodies carry lists/dicts, forms carry JSON strings."""
        value = self.get(name)
        if value is None or isinstance(value, list | dict):
            return value
        if isinstance(value, str):
            if not value.strip():
                return None
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise ApiError(
                    "invalid_arguments" if name != "blocks" else "invalid_blocks_format"
                ) from None
        return value

    def id_list(self, name: str) -> list[str]:
        value = self.get(name)
        if value is None:
            return []
        if isinstance(value, list):
            return [str(v).strip() for v in value if str(v).strip()]
        return [v.strip() for v in str(value).split(",") if v.strip()]


@dataclass
class ApiContext:
    """What a handler gets: the workspace, the arguments, where the sandbox lives."""

    workspace: Workspace
    args: Args
    base_url: str
    method: str = ""
    after: list[Callable[[], None]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def bot(self) -> str:
        return self.workspace.bot_user_id

    def later(self, fn: Callable[[], None]) -> None:
        """Run `fn` once the HTTP answer has been sent."""
        self.after.append(fn)

    def emit(self, event: dict[str, Any]) -> None:
        """Queue an Events API event for the bot (sent after the answer, if enabled)."""
        self.events.append(event)

    def now(self) -> float:
        return self.workspace.now()


# ------------------------------------------------------------------ channel access


def visible_channel(ctx: ApiContext, channel_id: str | None) -> Channel:
    """The channel as the bot may see it: private ones it is not in do not exist for it."""
    ch = ctx.workspace.channels.get(channel_id or "")
    if ch is None or (ch.is_private and ctx.bot not in ch.members):
        raise ApiError("channel_not_found")
    return ch


def member_channel(ctx: ApiContext, channel_id: str | None, *, allow_archived: bool = False) -> Channel:
    """A channel the bot can act in: visible, a member, not archived."""
    ch = visible_channel(ctx, channel_id)
    if ch.is_archived and not allow_archived:
        raise ApiError("is_archived")
    if ctx.bot not in ch.members:
        raise ApiError("not_in_channel")
    return ch


def postable_channel(ctx: ApiContext, channel: str | None) -> Channel:
    """Where chat.postMessage goes: a channel id, a DM id, or a user id (the bot's DM)."""
    if not channel:
        raise ApiError("channel_not_found")
    ws = ctx.workspace
    if channel.startswith(("U", "W")) and channel in ws.users:
        if channel == ctx.bot:
            raise ApiError("channel_not_found")
        return ws.dm_channel(channel, create=True)
    if channel.startswith("#"):
        found = ws.channel_by_name(channel[1:])
        channel = found.id if found else channel
    return member_channel(ctx, channel)


def normalize_blocks(blocks: list[dict] | None) -> list[dict] | None:
    """Give blocks and elements the ids Slack adds when they are missing."""
    if not blocks:
        return blocks
    for block in blocks:
        if isinstance(block, dict) and "block_id" not in block:
            block["block_id"] = secrets.token_urlsafe(3)
    for _, element in iter_elements(blocks):
        if "action_id" not in element and element.get("type") not in ("image",):
            element["action_id"] = secrets.token_urlsafe(3)
    return blocks


def paginate(ctx: ApiContext, items: list[Any], default_limit: int = 100) -> tuple[list[Any], str]:
    """A page of `items` from `cursor`/`limit`, and the next cursor ("" at the end)."""
    limit = ctx.args.number("limit", default_limit) or default_limit
    limit = max(1, min(limit, 1000))
    cursor = ctx.args.text("cursor") or ""
    start = 0
    if cursor:
        try:
            start = int(base64.b64decode(cursor.encode()).decode().split(":", 1)[1])
        except (ValueError, IndexError, UnicodeDecodeError, binascii.Error):
            raise ApiError("invalid_cursor") from None
    page = items[start : start + limit]
    end = start + len(page)
    next_cursor = base64.b64encode(f"next:{end}".encode()).decode() if end < len(items) else ""
    return page, next_cursor
