"""Buttons: the checklist's Done / Skip / Undo / Close / Post update and its menu, and a page's Acknowledge. The incident
comes from the middleware (a button naming another incident than its channel's is refused)."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.core import Core
from bot.errors import InvalidInput
from bot.incidents import steps
from bot.paging import service as pages

from . import modals
from .present import say
from .replies import answering


def _step(body: dict[str, Any], context: BoltContext) -> tuple[int, str]:
    value = str(body["actions"][0].get("value") or "")
    step_id = value.partition(":")[2].strip().lower()
    if context.get("incident") is None or not step_id or len(step_id) > 100:
        raise InvalidInput("That button is out of date; use `/incident status`.")
    return context["incident"], step_id


def _trigger(body: dict[str, Any]) -> str:
    return str(body.get("trigger_id") or "")


def register(app: App, core: Core) -> list[str]:
    @answering
    def step_done(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        ack()
        number, step_id = _step(body, context)
        if steps.missing_fields(core, number, step_id, {}):
            modals.open_step_fields(core, _trigger(body), number, step_id, context["actor"], {})
            return
        steps.complete(core, number, step_id, context["actor"], {})

    @answering
    def step_skip(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        ack()
        number, step_id = _step(body, context)
        modals.open_skip(core, _trigger(body), number, step_id, context["actor"])

    @answering
    def step_undo(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        ack()
        number, step_id = _step(body, context)
        modals.open_undo(core, _trigger(body), number, step_id, context["actor"])

    def opens(modal):
        """A checklist button that opens the incident's form (Close…, Post update…)."""

        @answering
        def listener(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
            ack()
            if context.get("incident") is None:
                raise InvalidInput("That button is out of date; use `/incident status`.")
            modal(core, _trigger(body), context["incident"], context["actor"])

        return listener

    incident_close = opens(modals.open_close)
    incident_update = opens(modals.open_update)

    @answering
    def incident_menu(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        """The checklist's overflow menu: Update, Page, Assign, Resolve, Close (each its form)."""
        ack()
        option = body["actions"][0].get("selected_option") or {}
        choice = str(option.get("value") or "").partition(":")[2]
        opener = MENU.get(choice)
        if context.get("incident") is None or opener is None:
            raise InvalidInput("That menu is out of date; use `/incident status`.")
        opener(core, _trigger(body), context["incident"], context["actor"])

    @answering
    def page_ack(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        ack()
        value = str(body["actions"][0].get("value") or "")
        if not (value.isascii() and value.isdigit() and len(value) <= 9):
            # (never None: acknowledge(page_id=None) is `/incident ack`, every page of theirs at once)
            raise InvalidInput("That button is out of date: acknowledge with `/incident ack`.")
        page_id = int(value)
        outcome = pages.acknowledge(core, context["actor"], page_id=page_id)
        container = body.get("container") if isinstance(body.get("container"), dict) else {}
        if body.get("response_url") or container.get("type") != "view":
            respond(text=say(core, outcome), response_type="ephemeral", replace_original=False)
        # (from the Home tab there is nowhere to answer: the tab is published again without the page)

    @answering
    def home_declare(ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
        ack()
        modals.open_declare(core, _trigger(body), "")  # the outcome comes by DM

    app.action("step_done")(step_done)
    app.action("step_skip")(step_skip)
    app.action("step_undo")(step_undo)
    app.action("incident_close")(incident_close)
    app.action("page_ack")(page_ack)
    app.action("home_declare")(home_declare)
    app.action("incident_update")(incident_update)
    app.action("incident_menu")(incident_menu)
    return ["step_done", "step_skip", "step_undo", "incident_close", "page_ack", "home_declare", "incident_update",
            "incident_menu"]


MENU = {"update": modals.open_update, "page": modals.open_page, "assign": modals.open_assign,
        "resolve": modals.open_resolve, "close": modals.open_close}
