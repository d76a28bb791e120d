"""Errors into replies, in one place: a domain error is said to the person (escaped, with the
field it belongs to); anything unexpected gets an error id that the log line repeats."""

from __future__ import annotations

import json
import logging
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from slack_bolt import App, BoltResponse

from bot.core import Core
from bot.errors import DomainError, InvalidInput, RateLimited, SlackError
from bot.render import fit, mrkdwn_escape

log = logging.getLogger("safeguard.errors")

# A mention the bot wrote itself (`<@U123>`) stays live; everything else a message carries
# (a user's `<!channel>`, `<https://x|y>`, a typed `<@U1|name>`) is escaped.
_OWN_MENTION = re.compile(r"&lt;@([UW][A-Z0-9]{2,20})&gt;")


def safe(text: str) -> str:
    return _OWN_MENTION.sub(r"<@\1>", mrkdwn_escape(text))


def new_error_id() -> str:
    return "E-" + secrets.token_hex(4).upper()


@dataclass
class Reply:
    text: str
    fields: dict[str, str] = field(default_factory=dict)  # modal errors by block id
    error_id: str | None = None


def explain(error: BaseException, where: str = "request") -> Reply:
    """What to tell the person. Unexpected errors are logged here, with their id and traceback,
    and never with the request body (it may hold what a responder typed)."""
    if isinstance(error, DomainError):
        fields = error.fields if isinstance(error, InvalidInput) else {}
        return Reply(f":no_entry: {fit(safe(str(error)), 3000)}", {k: fit(safe(v), 150) for k, v in fields.items()})
    error_id = new_error_id()
    if isinstance(error, SlackError):  # Slack said no (an outage, a channel gone): one line, no traceback
        log.warning("%s: Slack answered %s to %s in %s", error_id, error.code, error.method, where)
        return Reply(f":warning: Slack did not take that (`{safe(error.code)}`, error `{error_id}`); nothing you "
                     "did was lost. Try again in a moment.", error_id=error_id)
    if isinstance(error, RateLimited):  # Slack's rate limit (or the bot's pacing) has no room yet: expected
        log.warning("%s: %s rate limited for %.1f s in %s", error_id, error.method, error.retry_after, where)
        return Reply(f":hourglass: Slack asks the bot to slow down (error `{error_id}`); nothing you did was lost. "
                     f"Try again in {max(1, round(error.retry_after))} s.", error_id=error_id)
    log.error("%s: unexpected %s in %s", error_id, type(error).__name__, where,
              exc_info=(type(error), error, error.__traceback__))
    return Reply(f":warning: Something went wrong on our side (error `{error_id}`); nothing you did was "
                 "lost. Try again, and give the bot's maintainers the error id if it persists.", error_id=error_id)


def modal_errors(reply: Reply, view: dict[str, Any] | None) -> dict[str, Any]:
    """`response_action: errors`, each message at its field; one that belongs to no field goes
    to the modal's first input (Slack shows errors only at input blocks)."""
    blocks = (view or {}).get("blocks")
    inputs = [b["block_id"] for b in (blocks if isinstance(blocks, list) else [])
              if isinstance(b, dict) and b.get("type") == "input" and isinstance(b.get("block_id"), str)]
    if not inputs:  # Slack shows errors only at input blocks: say it in the modal instead
        return {"response_action": "update", "view": {
            "type": "modal", "title": {"type": "plain_text", "text": "Not done"},
            "close": {"type": "plain_text", "text": "Close"},
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": fit(reply.text, 2900)}}]}}
    errors = {k: v for k, v in reply.fields.items() if k in inputs}
    if not errors:
        errors = {inputs[0]: fit(reply.text, 150)}
    return {"response_action": "errors", "errors": errors}


def register(app: App, core: Core) -> None:
    @app.error
    def on_error(error: Exception, body: dict[str, Any], response: BoltResponse | None, respond=None):
        """Errors that escaped a listener's own answer (middleware, a payload Bolt could not
        hand to a listener): answer them like any other, never with a 500."""
        body = body if isinstance(body, dict) else {}
        reply = explain(error, where=str(body.get("type") or body.get("command") or "request"))
        kind = body.get("type")
        if kind == "view_submission":
            payload = modal_errors(reply, body.get("view") if isinstance(body.get("view"), dict) else None)
            return BoltResponse(status=200, body=json.dumps(payload), headers={"content-type": "application/json"})
        if kind in ("event_callback", "url_verification") or not (body.get("command") or body.get("response_url")):
            return BoltResponse(status=200, body="") if response is not None else None
        message = {"response_type": "ephemeral", "text": reply.text}
        if response is not None and kind in ("block_actions", "message_action", "shortcut") and respond is not None:
            # Slack shows nothing of the body that acknowledges a click: say it on the response_url.
            try:
                respond(text=reply.text, response_type="ephemeral", replace_original=False)
            except Exception:
                log.info("could not answer an error on the response_url")
            return BoltResponse(status=200, body="")
        if response is not None:  # not acknowledged yet: the answer rides on the ack
            return BoltResponse(status=200, body=json.dumps(message), headers={"content-type": "application/json"})
        if respond is not None:
            try:
                respond(text=reply.text, response_type="ephemeral", replace_original=False)
            except Exception:  # no response_url, or Slack refused it: the log has it
                log.info("could not answer an error on the response_url")
        return None
