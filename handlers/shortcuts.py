"""Message shortcut "Add to timeline"."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.core import Core
from bot.timeline import service as timeline
from handlers.replies import guarded


def register(app: App, core: Core) -> list[str]:
    @guarded
    def add_to_timeline(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        channel = body["channel"]["id"]
        text = timeline.add_message(core, channel_id=channel, message=body["message"],
                                    actor=body["user"]["id"], via="shortcut")
        respond(text=text, response_type="ephemeral", replace_original=False)

    app.shortcut("add_to_timeline")(add_to_timeline)
    return ["add_to_timeline"]
