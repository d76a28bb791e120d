"""Bolt middleware: who is asking and about which incident, once for every request, and each
Slack event handled once. Listeners read `context["actor"]` and `context["incident"]`."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from slack_bolt import App, BoltContext, BoltResponse

from bot.core import Core
from bot.errors import Forbidden, InvalidInput
from bot.events_seen import first_time
from bot.incidents import queries, ref

log = logging.getLogger(__name__)
NAMED = re.compile(r"^(?:INC-|#)?([0-9]{1,9})$", re.IGNORECASE)
NAMED_REF = re.compile(r"^INC-([0-9]{1,9})$", re.IGNORECASE)
# Subcommands that never concern one incident.
NO_INCIDENT = {"declare", "help", "list", "ack", "wellbeing", "break", "report"}
# Subcommands whose first argument is free text.
FREE_TEXT = {"note", "resolve"}


# Slack's user, channel and team ids: capitals and digits (`U0LEAD001`, `C0123ABCD`, `W…` in
# Enterprise Grid). Anything else (or longer than the 32 characters the database keeps) is not
# an id Slack sends: the request is treated as naming nobody and nowhere.
SLACK_ID = re.compile(r"[A-Z0-9]{2,32}")


def _id(value: Any) -> str | None:
    return value if isinstance(value, str) and SLACK_ID.fullmatch(value) else None


def _channel_of(body: dict[str, Any]) -> str | None:
    container = body.get("container") if isinstance(body.get("container"), dict) else {}  # (a string passes malformed)
    channel = body.get("channel_id") or body.get("channel") or container.get("channel_id")
    if isinstance(channel, dict):
        channel = channel.get("id")
    event = body.get("event") if isinstance(body.get("event"), dict) else {}
    item = event.get("item") if isinstance(event.get("item"), dict) else {}
    channel = channel or event.get("channel") or item.get("channel")
    return _id(channel)


def _actor_of(body: dict[str, Any]) -> str | None:
    user = body.get("user_id") or body.get("user")
    if isinstance(user, dict):
        user = user.get("id")
    if user is None and isinstance(body.get("event"), dict):
        user = body["event"].get("user")
    return _id(user)


def named_in_command(text: str, *, in_incident_channel: bool = False) -> tuple[str, int | None, str]:
    """`status INC-7 …` → ("status", 7, "…"): an incident named right after the subcommand. In an
    incident channel, a note or a resolution may begin with a ref: it is their text."""
    parts = (text or "").split(None, 2)
    if in_incident_channel and parts and parts[0].lower() in FREE_TEXT:
        return "", None, text
    if len(parts) >= 2 and (match := NAMED_REF.match(parts[1])) and parts[0].lower() not in NO_INCIDENT:
        return parts[0], int(match.group(1)), parts[2] if len(parts) > 2 else ""
    return "", None, text


# Buttons whose value names no incident of the channel they are in.
NOT_NAMING = {"page_ack", "repeat_join", "repeat_declare", "open_channel", "home_declare"}


def _named_in_payload(body: dict[str, Any]) -> int | None:
    """The incident a button (`N:step`) or a modal (`{"incident": N}`) names."""
    if body.get("type") == "block_actions":
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
            raise InvalidInput("That button is out of date; use `/incident status`.")
        value = actions[0].get("value")
        if value is None and isinstance(actions[0].get("selected_option"), dict):  # an overflow menu
            value = actions[0]["selected_option"].get("value")
        if str(actions[0].get("action_id")) in NOT_NAMING:  # (any JSON, an object or a list too)
            return None  # a page id (checked against who was paged), what a declaration gave, a link; the Home tab's Declare
        number = str(value or "").partition(":")[0]
        if not (match := NAMED.match(number)):
            raise InvalidInput("That button is out of date; use `/incident status`.")
        return int(match.group(1))
    if body.get("type") == "view_submission":
        view = body.get("view") if isinstance(body.get("view"), dict) else {}
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
        except (TypeError, ValueError):
            raise InvalidInput("That form is out of date; open it again.") from None
        number = meta.get("incident") if isinstance(meta, dict) else None
        if number is None:
            return None
        if not (type(number) is int and 0 < number < 10**9):  # (True is an int to Python)
            raise InvalidInput("That form is out of date; open it again.")
        return number
    return None


def malformed(body: Any) -> str | None:
    """What makes a payload one Slack would never send (so no listener should see it), or None."""
    if not isinstance(body, dict):
        return "not an object"
    kind = body.get("type")
    if kind == "view_submission" and not isinstance(body.get("view"), dict):
        return "a view submission without a view"
    if kind == "block_actions":
        actions = body.get("actions")
        if not (isinstance(actions, list) and actions and all(isinstance(a, dict) for a in actions)):
            return "block actions without actions"
    if kind == "event_callback" and not isinstance(body.get("event"), dict):
        return "an event callback without an event"
    for key in ("user", "channel", "team", "container", "message"):
        if key in body and body[key] is not None and not isinstance(body[key], dict | str):
            return f"a {key} that is neither an object nor an id"
    return None


def reject_malformed(body: Any, next) -> BoltResponse | None:
    """A signed payload of a shape Slack never sends: 400 and one line, never a listener. Runs
    before Bolt's own authorisation (`App(before_authorize=…)`), which reads the body too."""
    problem = malformed(body)
    if problem is not None:
        log.warning("refused a malformed request: %s", problem)
        return BoltResponse(status=400, body=json.dumps({"error": "malformed request"}))
    return next()


def register(app: App, core: Core) -> None:
    @app.use
    def handle_events_once(body: dict[str, Any], next) -> BoltResponse | None:
        """Slack retries an event it did not see acknowledged in time: act on each event_id once."""
        if isinstance(body, dict) and body.get("type") == "event_callback":
            event_id = body.get("event_id")
            if isinstance(event_id, str) and event_id and not first_time(core, event_id[:100]):
                return BoltResponse(status=200, body="")
        return next()

    @app.use
    def resolve_incident(body: dict[str, Any], context: BoltContext, next) -> BoltResponse | None:
        """The incident of the request: the channel's, or one named (`/incident status INC-7`,
        a button, a modal). A named one that is not the channel's: leads only."""
        if not isinstance(body, dict) or body.get("type") in ("url_verification", "app_rate_limited"):
            return next()
        context["actor"] = _actor_of(body)
        if context["actor"] is None and body.get("type") != "event_callback":
            raise InvalidInput("Slack did not say who is asking; nothing was done.")
        channel = _channel_of(body)
        here = queries.incident_number_for_channel(core, channel) if channel else None
        named = None
        if "command" in body:
            _, named, _ = named_in_command(str(body.get("text") or ""), in_incident_channel=here is not None)
        else:
            named = _named_in_payload(body)
        if named is not None and here is not None and named != here:
            raise Forbidden(f"That names {ref(named)}, but this is {ref(here)}'s channel.")
        if named is not None and here is None and body.get("type") != "view_submission" \
                and not core.is_lead(context["actor"] or ""):
            raise Forbidden(f"Run this in {ref(named)}'s channel (only the incident leads can name an "
                            "incident from elsewhere).")
        context["incident"] = named if named is not None else here
        context["channel_incident"] = here
        context["channel"] = channel
        return next()
