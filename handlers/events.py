"""Events API: a 📌 on a message, people joining or leaving a channel, mentions of the bot, the
Home tab opened.
Each event is handled once (the middleware de-duplicates by event_id)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from slack_bolt import App, BoltContext

from bot import home
from bot.core import Core
from bot.errors import SlackError
from bot.incidents import people
from bot.incidents.declare import playbook_list
from bot.timeline import service as timeline

from .errors import explain
from .present import say

log = logging.getLogger(__name__)
PIN_REACTIONS = {"pushpin", "round_pushpin"}


def event_time(event: dict[str, Any]) -> datetime | None:
    """When Slack says the event happened (its `event_ts`), to order joins and departures."""
    try:
        return datetime.fromtimestamp(float(event["event_ts"]), UTC)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def register(app: App, core: Core) -> list[str]:
    def reaction_added(event: dict[str, Any], context: BoltContext) -> None:
        item = event.get("item") if isinstance(event.get("item"), dict) else {}
        channel, ts, user = _text(item.get("channel")), _text(item.get("ts")), _text(event.get("user"))
        if _text(event.get("reaction")) not in PIN_REACTIONS or item.get("type") != "message" or not (channel and ts and user):
            return
        if context.get("incident") is None:
            return  # a 📌 outside incident channels is nobody's business here
        try:
            said = say(core, timeline.add_pinned_message(core, context["incident"], user, channel_id=channel, ts=ts))
        except Exception as err:  # a reaction has no reply of its own: tell the one who added it
            said = explain(err, where="reaction_added").text
        try:
            core.gateway.post_ephemeral(channel, user, said)
        except SlackError as err:
            log.info("could not confirm the 📌: %s", err.code)

    def member_joined_channel(event: dict[str, Any]) -> None:
        channel, user = _text(event.get("channel")), _text(event.get("user"))
        if channel and user:
            people.joined(core, channel, user, _text(event.get("inviter")), event_time(event))

    def member_left_channel(event: dict[str, Any]) -> None:
        channel, user = _text(event.get("channel")), _text(event.get("user"))
        if channel and user:
            people.left(core, channel, user, event_time(event))

    def app_mention(event: dict[str, Any]) -> None:
        channel = _text(event.get("channel"))
        if channel:
            core.gateway.post(channel, core.render.text("slack/help.txt.j2", playbooks=playbook_list(core)),
                              thread_ts=_text(event.get("ts")))

    app.event("reaction_added")(reaction_added)
    app.event("member_joined_channel")(member_joined_channel)
    app.event("member_left_channel")(member_left_channel)
    def app_home_opened(event: dict[str, Any]) -> None:
        user = _text(event.get("user"))
        if user and event.get("tab", "home") == "home":
            try:  # what the person may see is the policy's (bot.home reads through it)
                home.opened(core, user)
            except SlackError as err:
                log.info("could not publish the Home tab: %s", err.code)

    app.event("app_mention")(app_mention)
    app.event("app_home_opened")(app_home_opened)
    return ["reaction_added", "member_joined_channel", "member_left_channel", "app_mention", "app_home_opened"]
