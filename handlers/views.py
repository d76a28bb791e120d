"""Modal submissions: declare, a step's fields, a skip or undo reason, the close confirmation.
Mistakes are shown at their field; the incident comes from the middleware (private_metadata)."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App, BoltContext

from bot import wellbeing
from bot.core import Core
from bot.errors import InvalidInput, SlackError
from bot.incidents import lifecycle, people, steps, updates
from bot.incidents.declare import declare, validate
from bot.incidents.repeats import find_repeat
from bot.paging import service as pages

from . import repeats
from .errors import explain, modal_errors
from .replies import Answer

log = logging.getLogger(__name__)


def values_of(view: dict[str, Any]) -> dict[str, str]:
    """`state.values` → {block_id: plain value} for the element types our modals use."""
    out: dict[str, str] = {}
    state = view.get("state") if isinstance(view.get("state"), dict) else {}
    values = state.get("values") if isinstance(state.get("values"), dict) else {}
    for block_id, actions in values.items():
        if not isinstance(actions, dict):
            continue
        for element in actions.values():
            if not isinstance(element, dict):
                continue
            kind = element.get("type")
            if kind == "static_select":
                option = element.get("selected_option")
                value = option.get("value") if isinstance(option, dict) else None
            elif kind == "users_select":
                value = element.get("selected_user")
            else:
                value = element.get("value")
            if isinstance(value, str | int | float) and value != "":
                out[str(block_id)] = str(value).replace("\x00", "")  # PostgreSQL stores no NUL in text
    return out


def _meta(view: dict[str, Any]) -> dict[str, Any]:
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except (TypeError, ValueError):
        meta = None
    if not isinstance(meta, dict):
        raise InvalidInput("That form is out of date; open it again.")
    return meta


def _step_of(view: dict[str, Any], context: BoltContext) -> tuple[int, str]:
    step = _meta(view).get("step")
    if context.get("incident") is None or not isinstance(step, str) or not step:
        raise InvalidInput("That form is out of date; open it again.")
    return context["incident"], step


def submission(handler):
    """A view listener whose mistakes are shown in the modal, at their field."""

    def listener(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
        try:
            handler(body, view if isinstance(view, dict) else {}, context)
        except Exception as err:
            ack(**modal_errors(explain(err, where=handler.__name__), view))
            return
        ack()

    listener.__name__ = handler.__name__
    return listener


def register(app: App, core: Core) -> list[str]:
    def on_declare(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
        values = values_of(view)
        user = context["actor"]
        try:  # mistakes are shown in the modal; this touches no database
            validate(core, values.get("playbook", ""), values.get("summary", ""), values.get("severity"))
            channel = _meta(view).get("channel")
        except Exception as err:
            ack(**modal_errors(explain(err, where="declare modal"), view))
            return
        channel = channel if isinstance(channel, str) and channel else None  # none: from the Home tab
        # Write the incident before the modal closes (a crash then loses nothing the user was
        # told about), but close it by the deadline if the database is slow: a submission that
        # outlived Slack's 3 s would stay open and invite a second incident.
        answer = Answer(ack, lambda text, **_: _tell(channel, user, text), core.settings.ack_deadline,
                        placeholder={})
        try:
            repeat = find_repeat(core, values.get("playbook", ""), values.get("summary", ""), user)
            if repeat is not None:  # asked before anything is created; the form closes
                answer()
                _tell(channel, user, *repeats.question(
                    core, repeat, playbook_id=values.get("playbook", ""), summary=values.get("summary", ""),
                    severity=values.get("severity"), channel=channel))
                return
            declared = declare(core, playbook_id=values.get("playbook", ""), summary=values.get("summary", ""),
                               severity=values.get("severity"), actor=user, channel_id=channel)
        except Exception as err:
            reply = explain(err, where="declare modal")
            if answer.late:
                _tell(channel, user, reply.text)
            else:
                answer(**modal_errors(reply, view))
            return
        answer()  # the modal closes (the watcher may have closed it already)
        _tell(channel, user, core.render.text("slack/declared.txt.j2", declared=declared, slack_ready=core.gateway.ready))

    def _tell(channel: str | None, user: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        try:
            core.gateway.tell(channel, user, text, blocks)
        except SlackError:
            log.warning("could not tell %s the outcome of a declaration", user)

    @submission
    def on_step_fields(body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
        number, step = _step_of(view, context)
        values, viewed = values_of(view), {}
        if steps.step_definition(core, number, step).viewing_field is not None:
            values, viewed = wellbeing.split_viewing(values)  # the duration is never a step value
        steps.complete(core, number, step, context["actor"], values, viewed=viewed or None)

    @submission
    def on_step_skip(body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
        number, step = _step_of(view, context)
        steps.skip(core, number, step, context["actor"], values_of(view).get("reason", ""))

    @submission
    def on_step_undo(body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
        number, step = _step_of(view, context)
        steps.reopen(core, number, step, context["actor"], values_of(view).get("reason", ""))

    @submission
    def on_close(body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
        if context.get("incident") is None:
            raise InvalidInput("That form is out of date; open it again.")
        reason = values_of(view).get("reason")
        lifecycle.close(core, context["incident"], context["actor"], anyway=reason)

    def _incident(context: BoltContext) -> int:
        if context.get("incident") is None:
            raise InvalidInput("That form is out of date; open it again.")
        return context["incident"]

    @submission
    def on_status_update(body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
        values = values_of(view)
        updates.post_status_update(core, _incident(context), context["actor"], values.get("state", ""),
                                   values.get("next", ""), values.get("next_update"))

    @submission
    def on_page(body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
        values = values_of(view)
        pages.page_by_hand(core, _incident(context), context["actor"], values.get("role", ""),
                           values.get("reason", "").strip())

    @submission
    def on_assign(body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
        values = values_of(view)
        people.assign(core, _incident(context), context["actor"], values.get("role", ""), values.get("user"))

    @submission
    def on_resolve(body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
        lifecycle.resolve(core, _incident(context), context["actor"], values_of(view).get("summary", ""))

    app.view("status_update")(on_status_update)
    app.view("incident_page")(on_page)
    app.view("incident_assign")(on_assign)
    app.view("incident_resolve")(on_resolve)
    app.view("declare")(on_declare)
    app.view("step_fields")(on_step_fields)
    app.view("step_skip")(on_step_skip)
    app.view("step_undo")(on_step_undo)
    app.view("incident_close")(on_close)
    return ["declare", "step_fields", "step_skip", "step_undo", "incident_close", "status_update", "incident_page",
            "incident_assign", "incident_resolve"]
