"""`/incident …`: one listener, a table of subcommands."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.core import Core
from bot.errors import InvalidInput
from bot.incidents import lifecycle, people, queries, steps
from bot.incidents.declare import declare, playbook_list, validate
from bot.paging import service as pages
from bot.timeline import service as timeline
from handlers import modals
from handlers.parsing import head_rest, parse_fields, parse_user, split_command
from handlers.replies import ephemeral, guarded, respond_later


@dataclass
class Ctx:
    core: Core
    ack: Ack
    respond: Respond
    user: str
    channel: str
    trigger_id: str
    rest: str

    def incident(self) -> int:
        number = queries.incident_number_for_channel(self.core, self.channel)
        if number is None:
            raise InvalidInput("Run this in an incident channel (see `/incident list`).")
        queries.check_access(self.core, number, self.user)
        return number

    def reply(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        self.ack(**ephemeral(text, blocks))


def register(app: App, core: Core) -> list[str]:
    @guarded(deadline=core.settings.ack_deadline)
    def incident_command(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        sub, rest = split_command(body.get("text", ""))
        ctx = Ctx(core, ack, respond, body["user_id"], body.get("channel_id", ""), body.get("trigger_id", ""), rest)
        handler = SUBCOMMANDS.get(sub)
        if handler is None:
            ctx.reply(f"Unknown command `{sub}`. " + core.render.text("slack/help.txt.j2", playbooks=playbook_list(core)))
            return
        handler(ctx)

    app.command("/incident")(incident_command)
    return ["/incident"]


def _help(ctx: Ctx) -> None:
    ctx.reply(ctx.core.render.text("slack/help.txt.j2", playbooks=playbook_list(ctx.core)))


def _declare(ctx: Ctx) -> None:
    if not ctx.rest:
        ctx.ack()
        modals.open_declare(ctx.core, ctx.trigger_id, ctx.channel)
        return
    playbook_id, summary = head_rest(ctx.rest)
    playbook_id = playbook_id.lower()
    validate(ctx.core, playbook_id, summary)  # mistakes are answered in the ack itself
    # Ack first (Slack's 3 s, and the bot's own latency target), then write the incident:
    # the confirmation with its number follows on the response_url.
    ctx.ack()

    def write() -> str:
        declared = declare(ctx.core, playbook_id=playbook_id, summary=summary, user=ctx.user,
                           channel_id=ctx.channel)
        return ctx.core.render.text("slack/declared.txt.j2", declared=declared)

    respond_later(ctx.core, ctx.respond, write)


def _status(ctx: Ctx) -> None:
    view = queries.status_view(ctx.core, ctx.incident())
    blocks = ctx.core.render.blocks("slack/status.json.j2", incident=view)
    ctx.reply(ctx.core.render.text("slack/checklist.txt.j2", incident=view), blocks)


def _list(ctx: Ctx) -> None:
    found = queries.list_open(ctx.core, ctx.user)
    ctx.reply(ctx.core.render.text("slack/list.txt.j2", incidents=found))


def _done(ctx: Ctx) -> None:
    number = ctx.incident()
    step_id, values = parse_fields(ctx.rest)
    missing = steps.missing_fields(ctx.core, number, step_id, values)
    if missing:
        steps.check_given(ctx.core, number, step_id, values)  # a typo is said, not dropped
        ctx.ack()
        modals.open_step_fields(ctx.core, ctx.trigger_id, number, step_id, values)
        return
    result = steps.complete(ctx.core, number, step_id, ctx.user, values)
    ctx.reply(result)


def _skip(ctx: Ctx) -> None:
    number = ctx.incident()
    step_id, reason = head_rest(ctx.rest)
    step_id = step_id.lower()
    ctx.reply(steps.skip(ctx.core, number, step_id, ctx.user, reason))


def _undo(ctx: Ctx) -> None:
    number = ctx.incident()
    ctx.reply(steps.reopen(ctx.core, number, ctx.rest.strip().lower(), ctx.user))


def _assign(ctx: Ctx) -> None:
    number = ctx.incident()
    parts = ctx.rest.split()
    if len(parts) != 2:
        raise InvalidInput("Usage: `/incident assign ROLE @user`.")
    ctx.reply(people.assign(ctx.core, number, parts[0].lower(), parse_user(parts[1]), ctx.user))


def _note(ctx: Ctx) -> None:
    number = ctx.incident()
    ctx.reply(lifecycle.add_note(ctx.core, number, ctx.rest, ctx.user))


def _correct(ctx: Ctx) -> None:
    number = ctx.incident()
    target, text = head_rest(ctx.rest)
    ctx.reply(lifecycle.add_correction(ctx.core, number, target, text, ctx.user))


def _page(ctx: Ctx) -> None:
    number = ctx.incident()
    role, reason = head_rest(ctx.rest)
    role = role.lower()
    ctx.reply(pages.page_by_hand(ctx.core, number, role.strip(), reason.strip(), ctx.user))


def _ack(ctx: Ctx) -> None:
    number = queries.incident_number_for_channel(ctx.core, ctx.channel)
    ctx.reply(pages.acknowledge(ctx.core, ctx.user, incident_id=number))


def _severity(ctx: Ctx) -> None:
    number = ctx.incident()
    ctx.reply(lifecycle.set_severity(ctx.core, number, ctx.rest.strip(), ctx.user))


def _resolve(ctx: Ctx) -> None:
    number = ctx.incident()
    ctx.reply(lifecycle.resolve(ctx.core, number, ctx.rest.strip(), ctx.user))


def _close(ctx: Ctx) -> None:
    number = ctx.incident()
    ctx.reply(lifecycle.close(ctx.core, number, ctx.user))


def _timeline(ctx: Ctx) -> None:
    number = ctx.incident()
    ctx.reply(timeline.post_to_channel(ctx.core, number, (ctx.rest.strip() or "md").lower(), ctx.user))


SUBCOMMANDS: dict[str, Callable[[Ctx], None]] = {
    "help": _help,
    "declare": _declare,
    "status": _status,
    "list": _list,
    "done": _done,
    "skip": _skip,
    "undo": _undo,
    "assign": _assign,
    "note": _note,
    "correct": _correct,
    "page": _page,
    "ack": _ack,
    "severity": _severity,
    "resolve": _resolve,
    "close": _close,
    "timeline": _timeline,
}

__all__ = ["register", "SUBCOMMANDS"]
