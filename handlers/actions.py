"""Buttons: the checklist's Done / Skip / Undo, and a page's Acknowledge."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.core import Core
from bot.errors import InvalidInput
from bot.incidents import queries, steps
from bot.paging import service as pages
from handlers import modals
from handlers.replies import guarded


def _target(core: Core, body: dict[str, Any]) -> tuple[int, str, str]:
    value = body["actions"][0].get("value", "")
    number, _, step_id = value.partition(":")
    if not (number.isascii() and number.isdigit()) or not step_id:
        raise InvalidInput("That button is out of date; use `/incident status`.")
    user = body["user"]["id"]
    queries.check_access(core, int(number), user)
    return int(number), step_id, user


def register(app: App, core: Core) -> list[str]:
    @guarded
    def step_done(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        number, step_id, user = _target(core, body)
        if steps.missing_fields(core, number, step_id, {}):
            modals.open_step_fields(core, body["trigger_id"], number, step_id, {})
            return
        steps.complete(core, number, step_id, user, {})

    @guarded
    def step_skip(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        number, step_id, _user = _target(core, body)
        steps.step_definition(core, number, step_id)
        modals.open_skip(core, body["trigger_id"], number, step_id)

    @guarded
    def step_undo(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        number, step_id, user = _target(core, body)
        steps.reopen(core, number, step_id, user)

    @guarded
    def page_ack(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        value = body["actions"][0].get("value", "")
        page_id = int(value) if value.isascii() and value.isdigit() else None
        text = pages.acknowledge(core, body["user"]["id"], page_id=page_id)
        respond(text=text, response_type="ephemeral", replace_original=False)

    app.action("step_done")(step_done)
    app.action("step_skip")(step_skip)
    app.action("step_undo")(step_undo)
    app.action("page_ack")(page_ack)
    return ["step_done", "step_skip", "step_undo", "page_ack"]
