"""A declaration that repeats an open incident: the question (Join INC-N / Declare a new one
anyway) and its two buttons; and the Open button of a declaration's confirmation (a link
button, which Slack still reports as an action: acked, nothing else)."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.core import Core
from bot.errors import InvalidInput
from bot.incidents.declare import declare, validate
from bot.incidents.repeats import Repeat, join_repeat

from .context import SLACK_ID
from .present import say
from .replies import answering

ACTIONS = ("repeat_join", "repeat_declare", "open_channel")


def question(core: Core, repeat: Repeat, *, playbook_id: str, summary: str, severity: str | None,
             channel: str | None) -> tuple[str, list[dict[str, Any]]]:
    """The ephemeral question, asked before anything is created. The buttons carry what was
    given, so "Declare a new one anyway" declares exactly that."""
    given = {"playbook": playbook_id, "summary": summary, "severity": severity, "channel": channel}
    join = json.dumps({**given, "incident": repeat.number}, ensure_ascii=False, separators=(",", ":"))
    anyway = json.dumps(given, ensure_ascii=False, separators=(",", ":"))
    text = core.render.text("slack/repeat_question.txt.j2", repeat=repeat)
    blocks = core.render.blocks("slack/repeat_question.json.j2", text=text, repeat=repeat,
                                join_value=join, anyway_value=anyway)
    return text, blocks


def _given(body: dict[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(str(body["actions"][0].get("value") or ""))
    except (KeyError, IndexError, TypeError, ValueError):
        value = None
    if not isinstance(value, dict) or not isinstance(value.get("playbook"), str) \
            or not isinstance(value.get("summary"), str):
        raise InvalidInput("That button is out of date: declare again with `/incident declare`.")
    return value


def register(app: App, core: Core) -> list[str]:
    @answering
    def repeat_join(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        ack()
        given = _given(body)
        number = given.get("incident")
        if not (type(number) is int and 0 < number < 10**9):
            raise InvalidInput("That button is out of date: declare again with `/incident declare`.")
        outcome = join_repeat(core, incident_id=number, actor=context["actor"], playbook_id=given["playbook"],
                              summary=given["summary"])
        respond(text=say(core, outcome), response_type="ephemeral", replace_original=True)

    @answering
    def repeat_declare(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        ack()
        given = _given(body)
        severity = given.get("severity") if isinstance(given.get("severity"), str) else None
        channel = given.get("channel") if isinstance(given.get("channel"), str) \
            and SLACK_ID.fullmatch(given["channel"]) else None
        validate(core, given["playbook"], given["summary"], severity)
        declared = declare(core, playbook_id=given["playbook"], summary=given["summary"], severity=severity,
                           actor=context["actor"], channel_id=channel,
                           response_url=str(body.get("response_url") or "") or None)
        respond(text=core.render.text("slack/declared.txt.j2", declared=declared, slack_ready=core.gateway.ready),
                response_type="ephemeral", replace_original=True)

    def open_channel(ack: Ack) -> None:
        ack()  # a link button: Slack opened the channel; there is nothing to do

    app.action("repeat_join")(repeat_join)
    app.action("repeat_declare")(repeat_declare)
    app.action("open_channel")(open_channel)
    return list(ACTIONS)
