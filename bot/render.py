"""Jinja2 rendering of everything the bot says: Slack messages and modals are JSON templates
(every interpolated string goes through `tojson`), plain texts are text templates."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined


def mrkdwn_escape(text: Any) -> str:
    """Slack's three control characters; stops user text from forming mentions or links."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_date(at: datetime | None, fmt: str = "{date_short_pretty} {time}") -> str:
    """A time shown in each reader's own time zone, with a UTC fallback."""
    if at is None:
        return ""
    epoch = int(at.timestamp())
    fallback = at.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{epoch}^{fmt}|{fallback}>"


def mention(user_id: str | None) -> str:
    if user_id and user_id.startswith("api:"):  # an API token (bot.tokens), not a Slack user
        return f"`{mrkdwn_escape(user_id)}`"
    return f"<@{user_id}>" if user_id else "nobody"


class Renderer:
    def __init__(self, templates_dir: Path) -> None:
        self.env = Environment(
            loader=FileSystemLoader(str(templates_dir)),
            undefined=StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.env.filters["esc"] = mrkdwn_escape
        self.env.filters["date"] = slack_date
        self.env.filters["mention"] = mention
        self.env.filters["fit"] = fit
        self.env.policies["json.dumps_kwargs"] = {"ensure_ascii": False}

    def text(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(**context).strip()

    def blocks(self, name: str, **context: Any) -> Any:
        """Render a JSON template (Block Kit blocks or a view) into Python data."""
        return json.loads(self.env.get_template(name).render(**context))


_TOKEN_START = {"&": ";", "<": ">"}


def fit(text: str, limit: int, ellipsis: str = "…") -> str:
    """`text` cut to at most `limit` characters without splitting an entity (`&amp;`) or a
    Slack token (`<@U1>`, `<!date^…|…>`): escaping makes text longer than the length it was
    capped at, and Slack refuses a block over its limit (it would retry that for ever)."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - len(ellipsis), 0)]
    opened = max(cut.rfind("&"), cut.rfind("<"))
    if opened >= 0 and _TOKEN_START[cut[opened]] not in cut[opened:]:
        cut = cut[:opened]
    return cut + ellipsis
