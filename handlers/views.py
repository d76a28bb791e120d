"""Modal submissions: declare, a step's fields, a skip reason."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App

from bot.core import Core
from bot.errors import DomainError, InvalidInput, SlackError
from bot.incidents import queries, steps
from bot.incidents.declare import declare, validate
from handlers.replies import SORRY, Answer

log = logging.getLogger(__name__)


def values_of(view: dict[str, Any]) -> dict[str, str]:
    """`state.values` → {block_id: plain value} for the element types our modals use."""
    out: dict[str, str] = {}
    for block_id, actions in view.get("state", {}).get("values", {}).items():
        for element in actions.values():
            kind = element.get("type")
            if kind == "static_select":
                option = element.get("selected_option")
                value = option["value"] if option else None
            elif kind == "users_select":
                value = element.get("selected_user")
            else:
                value = element.get("value")
            if value not in (None, ""):
                out[block_id] = value
    return out


def first_input(view: dict[str, Any]) -> str:
    """Where to show an error that belongs to no one field (Slack needs an input block id)."""
    return next((b["block_id"] for b in view.get("blocks", []) if b.get("type") == "input"), "summary")


def _answer_errors(ack: Ack, err: DomainError, default_block: str) -> None:
    fields = err.fields if isinstance(err, InvalidInput) and err.fields else {default_block: str(err)}
    ack(response_action="errors", errors=fields)


def register(app: App, core: Core) -> list[str]:
    def on_declare(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = values_of(view)
        meta = json.loads(view.get("private_metadata") or "{}")
        user = body["user"]["id"]
        try:  # mistakes are shown in the modal; this touches no database
            validate(core, values.get("playbook", ""), values.get("summary", ""), values.get("severity"))
        except DomainError as err:
            _answer_errors(ack, err, "playbook" if "playbook" in str(err) else "summary")
            return
        # Write the incident before the modal closes (a crash then loses nothing the user was
        # told about), but close it by the deadline if the database is slow: a submission that
        # outlived Slack's 3 s would stay open and invite a second incident.
        channel = meta.get("channel")
        answer = Answer(ack, lambda text, **_: _tell(channel, user, text), core.settings.ack_deadline,
                        placeholder={})
        try:
            declared = declare(core, playbook_id=values.get("playbook", ""), summary=values.get("summary", ""),
                               severity=values.get("severity"), user=user, channel_id=channel)
        except DomainError as err:
            if answer.late:
                _tell(channel, user, f":no_entry: {err}")
            else:
                _answer_errors(answer, err, "playbook" if "playbook" in str(err) else "summary")
            return
        except Exception:
            log.exception("declaring from the modal failed")
            if answer.late:
                _tell(channel, user, SORRY)
            else:
                answer(response_action="errors", errors={"summary": SORRY})
            return
        answer()  # the modal closes (the watcher may have closed it already)
        _tell(channel, user, core.render.text("slack/declared.txt.j2", declared=declared))

    def _tell(channel: str | None, user: str, text: str) -> None:
        try:
            core.gateway.tell(channel, user, text)
        except SlackError:
            log.exception("could not tell %s: %s", user, text)

    def on_step_fields(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        meta = json.loads(view.get("private_metadata") or "{}")
        user = body["user"]["id"]
        try:
            queries.check_access(core, meta["incident"], user)
            steps.complete(core, meta["incident"], meta["step"], user, values_of(view))
        except DomainError as err:
            _answer_errors(ack, err, first_input(view))
            return
        ack()

    def on_step_skip(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        meta = json.loads(view.get("private_metadata") or "{}")
        user = body["user"]["id"]
        try:
            queries.check_access(core, meta["incident"], user)
            steps.skip(core, meta["incident"], meta["step"], user, values_of(view).get("reason", ""))
        except DomainError as err:
            ack(response_action="errors", errors={"reason": str(err)})
            return
        ack()

    app.view("declare")(on_declare)
    app.view("step_fields")(on_step_fields)
    app.view("step_skip")(on_step_skip)
    return ["declare", "step_fields", "step_skip"]
