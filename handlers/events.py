"""Events API: a 📌 on a message, people joining or leaving a channel, mentions of the bot."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from slack_bolt import App

from bot.core import Core
from bot.errors import DomainError, SlackError
from bot.events_seen import first_time
from bot.incidents import people
from bot.incidents.declare import playbook_list
from bot.timeline import service as timeline

log = logging.getLogger(__name__)
PIN_REACTIONS = {"pushpin", "round_pushpin"}


def event_time(event: dict[str, Any]) -> datetime | None:
    """When Slack says the event happened (its `event_ts`), to order joins and departures."""
    try:
        return datetime.fromtimestamp(float(event["event_ts"]), UTC)
    except (KeyError, TypeError, ValueError):
        return None


def register(app: App, core: Core) -> list[str]:
    def is_new(body: dict[str, Any]) -> bool:
        return first_time(core, body.get("event_id") or "")

    def reaction_added(body: dict[str, Any], event: dict[str, Any]) -> None:
        item = event.get("item") or {}
        if event.get("reaction") not in PIN_REACTIONS or item.get("type") != "message" or not is_new(body):
            return
        try:
            said = timeline.add_pinned_message(core, channel_id=item["channel"], ts=item["ts"], actor=event["user"])
        except DomainError as err:
            log.info("📌 not recorded: %s", err)
            return
        try:  # a reaction has no reply of its own: tell the one who added it, and only them
            core.gateway.post_ephemeral(item["channel"], event["user"], said)
        except SlackError as err:
            log.info("could not confirm the 📌: %s", err)

    def member_joined_channel(body: dict[str, Any], event: dict[str, Any]) -> None:
        if is_new(body):
            people.joined(core, event["channel"], event["user"], event.get("inviter"), event_time(event))

    def member_left_channel(body: dict[str, Any], event: dict[str, Any]) -> None:
        if is_new(body):
            people.left(core, event["channel"], event["user"], event_time(event))

    def app_mention(body: dict[str, Any], event: dict[str, Any]) -> None:
        if not is_new(body):
            return
        core.gateway.post(event["channel"], core.render.text("slack/help.txt.j2", playbooks=playbook_list(core)),
                          thread_ts=event.get("ts"))

    app.event("reaction_added")(reaction_added)
    app.event("member_joined_channel")(member_joined_channel)
    app.event("member_left_channel")(member_left_channel)
    app.event("app_mention")(app_mention)
    return ["reaction_added", "member_joined_channel", "member_left_channel", "app_mention"]
