"""Message shortcut "Add to timeline"."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.core import Core
from bot.errors import InvalidInput
from bot.timeline import service as timeline

from .present import say
from .replies import answering


def register(app: App, core: Core) -> list[str]:
    @answering
    def add_to_timeline(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        ack()
        channel = (body.get("channel") or {}).get("id") if isinstance(body.get("channel"), dict) else None
        message = body.get("message")
        if context.get("incident") is None or not isinstance(message, dict) or not channel:
            raise InvalidInput("Only messages in an incident channel can be added to its timeline.")
        outcome = timeline.add_message(core, context["incident"], context["actor"], channel_id=channel,
                                       message=message, via="shortcut")
        respond(text=say(core, outcome), response_type="ephemeral", replace_original=False)

    app.shortcut("add_to_timeline")(add_to_timeline)
    return ["add_to_timeline"]
