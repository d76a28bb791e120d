"""`/incident …`: one listener, a table of subcommands. Each parses, calls one core function with
the acting user and the incident the middleware resolved, and says the outcome."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot import wellbeing
from bot.core import Core
from bot.errors import InvalidInput
from bot.incidents import lifecycle, people, queries, steps, updates
from bot.incidents.declare import declare, normalise_severity, playbook_list, validate
from bot.incidents.repeats import find_repeat
from bot.outcomes import Outcome
from bot.paging import service as pages
from bot.policy import authorize
from bot.reports import service as reports
from bot.timeline import service as timeline

from . import modals, repeats
from .context import named_in_command
from .errors import safe
from .parsing import head_rest, parse_fields, parse_user, split_command
from .present import say
from .replies import answering, ephemeral


@dataclass
class Ctx:
    core: Core
    ack: Ack
    respond: Respond
    user: str
    channel: str
    trigger_id: str
    rest: str
    number: int | None  # the incident (resolved by the middleware), None outside one
    response_url: str = ""

    def incident(self) -> int:
        if self.number is None:
            raise InvalidInput("Run this in an incident channel (see `/incident list`), or, as an incident "
                               "lead, name it: `/incident status INC-7`.")
        return self.number

    def reply(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        self.ack(**ephemeral(text, blocks))

    def said(self, outcome: Outcome) -> None:
        self.reply(say(self.core, outcome))


def register(app: App, core: Core) -> list[str]:
    @answering(deadline=core.settings.ack_deadline)
    def incident_command(ack: Ack, body: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        text = str(body.get("text") or "").replace("\x00", "")  # PostgreSQL stores no NUL in text
        named_sub, _, named_rest = named_in_command(text, in_incident_channel=context.get("channel_incident") is not None)
        sub, rest = split_command(text) if not named_sub else (named_sub.lower(), named_rest)
        ctx = Ctx(core, ack, respond, context["actor"], context.get("channel") or "",
                  str(body.get("trigger_id") or ""), rest, context.get("incident"), str(body.get("response_url") or ""))
        handler = SUBCOMMANDS.get(sub)
        if handler is None:
            guess = difflib.get_close_matches(sub, SUBCOMMANDS, n=1, cutoff=0.6)
            if guess:  # a typo at 3 a.m. gets the command it meant, not the whole help
                ctx.reply(f"Unknown command `{safe(sub[:40])}`. Did you mean `/incident {guess[0]}`? "
                          "(`/incident help` lists them all.)")
            else:
                ctx.reply(f"Unknown command `{safe(sub[:40])}`. " + core.render.text(
                    "slack/help.txt.j2", playbooks=playbook_list(core)))
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
    word, after = head_rest(summary)
    given_severity = None
    if word.lower().startswith(("severity=", "sev=")):  # `declare grooming severity=2 …`
        given_severity, summary = word.partition("=")[2], after
    severity = normalise_severity(given_severity) if given_severity is not None else None
    validate(ctx.core, playbook_id, "-")  # an unknown playbook: did-you-mean, in the ack itself
    if not " ".join(summary.split()) or (given_severity is not None and severity is None):
        # Half a declaration at 3 a.m.: the form, with what was given filled in.
        ctx.ack()
        modals.open_declare(ctx.core, ctx.trigger_id, ctx.channel, playbook=playbook_id, summary=summary,
                            severity=severity)
        return
    validate(ctx.core, playbook_id, summary, severity)  # mistakes are answered in the ack itself
    repeat = find_repeat(ctx.core, playbook_id, summary, ctx.user)
    if repeat is not None:  # asked before anything is created
        ctx.reply(*repeats.question(ctx.core, repeat, playbook_id=playbook_id, summary=summary, severity=severity,
                                    channel=ctx.channel))
        return
    # Written before the ack: an acknowledged declaration is never lost. When the database is
    # slow the ack goes out by the deadline ("working on it") and the answer follows.
    declared = declare(ctx.core, playbook_id=playbook_id, summary=summary, actor=ctx.user, channel_id=ctx.channel,
                       severity=severity, response_url=ctx.response_url or None)
    ctx.reply(ctx.core.render.text("slack/declared.txt.j2", declared=declared, slack_ready=ctx.core.gateway.ready))


def _status(ctx: Ctx) -> None:
    number = ctx.incident()
    queries.check_access(ctx.core, number, ctx.user)
    view = queries.status_view(ctx.core, number)
    blocks = ctx.core.render.blocks("slack/status.json.j2", incident=view)
    ctx.reply(ctx.core.render.text("slack/checklist.txt.j2", incident=view), blocks)


def _list(ctx: Ctx) -> None:
    found = queries.list_open(ctx.core, ctx.user)
    ctx.reply(ctx.core.render.text("slack/list.txt.j2", incidents=found))


def _done(ctx: Ctx) -> None:
    number = ctx.incident()
    step_id, values = parse_fields(ctx.rest)
    authorize(ctx.core, number, ctx.user, "step", step_id=step_id)  # who may, before what is wrong
    if steps.step_definition(ctx.core, number, step_id).viewing_field is not None:
        values, viewed = wellbeing.split_viewing(values)  # `viewed=25m`: the private ledger, not a value
    else:
        viewed = {}
    missing = steps.missing_fields(ctx.core, number, step_id, values)
    if missing:
        steps.check_given(ctx.core, number, step_id, values)  # a typo is said, not dropped
        ctx.ack()
        modals.open_step_fields(ctx.core, ctx.trigger_id, number, step_id, ctx.user, {**values, **viewed})
        return
    ctx.said(steps.complete(ctx.core, number, step_id, ctx.user, values, viewed=viewed or None))


def _skip(ctx: Ctx) -> None:
    number = ctx.incident()
    step_id, reason = head_rest(ctx.rest)
    ctx.said(steps.skip(ctx.core, number, step_id.lower(), ctx.user, reason))


def _undo(ctx: Ctx) -> None:
    number = ctx.incident()
    step_id, reason = head_rest(ctx.rest)
    ctx.said(steps.reopen(ctx.core, number, step_id.lower(), ctx.user, reason))


ASSIGN_USAGE = ("Usage: `/incident assign ROLE @user` (`anyway` after the person overrides a wellbeing "
                "limit or break), or `/incident assign ROLE` to have someone picked.")


def _assign(ctx: Ctx) -> None:
    number = ctx.incident()
    parts = ctx.rest.split()
    if not parts or len(parts) > 3 or (len(parts) == 3 and parts[2].lower() != "anyway"):
        raise InvalidInput(ASSIGN_USAGE)
    user = parse_user(parts[1]) if len(parts) > 1 else None
    ctx.said(people.assign(ctx.core, number, ctx.user, parts[0].lower(), user, anyway=len(parts) == 3))


def _viewed(ctx: Ctx) -> None:
    number = ctx.incident()
    duration, values = parse_fields(ctx.rest) if ctx.rest.strip() else ("", {})
    if not duration:
        raise InvalidInput("Usage: `/incident viewed DURATION [items=N] [kind=image|video|audio|text]`, "
                           "like `/incident viewed 25m items=40 kind=image`.")
    unknown = sorted(set(values) - {"items", "kind"})
    if unknown:
        raise InvalidInput(f"`{unknown[0]}` is not something `viewed` takes: `items=N`, `kind=image|video|audio|text`.")
    ctx.said(wellbeing.record_viewing(ctx.core, number, ctx.user, duration, items=values.get("items"),
                                      kind=values.get("kind")))


def _wellbeing(ctx: Ctx) -> None:
    view = wellbeing.my_wellbeing(ctx.core, ctx.user)
    ctx.reply(ctx.core.render.text("slack/wellbeing.txt.j2", view=view))


def _break(ctx: Ctx) -> None:
    ctx.said(wellbeing.take_break(ctx.core, ctx.user, ctx.rest.strip() or None))


def _note(ctx: Ctx) -> None:
    ctx.said(lifecycle.add_note(ctx.core, ctx.incident(), ctx.user, ctx.rest))


def _correct(ctx: Ctx) -> None:
    number = ctx.incident()
    target, text = head_rest(ctx.rest)
    ctx.said(lifecycle.add_correction(ctx.core, number, ctx.user, target, text))


def _page(ctx: Ctx) -> None:
    number = ctx.incident()
    role, reason = head_rest(ctx.rest)
    ctx.said(pages.page_by_hand(ctx.core, number, ctx.user, role.lower().strip(), reason.strip()))


def _ack(ctx: Ctx) -> None:
    ctx.said(pages.acknowledge(ctx.core, ctx.user, incident_id=ctx.number))


def _severity(ctx: Ctx) -> None:
    ctx.said(lifecycle.set_severity(ctx.core, ctx.incident(), ctx.user, ctx.rest))


def _resolve(ctx: Ctx) -> None:
    ctx.said(lifecycle.resolve(ctx.core, ctx.incident(), ctx.user, ctx.rest.strip()))


def _close(ctx: Ctx) -> None:
    number = ctx.incident()
    word, reason = head_rest(ctx.rest)
    if word.lower() == "anyway":
        ctx.said(lifecycle.close(ctx.core, number, ctx.user, anyway=reason))
    elif word:
        raise InvalidInput("Usage: `/incident close`, or `/incident close anyway REASON…` to close with "
                           "legal steps still open (the reason is recorded).")
    else:
        ctx.said(lifecycle.close(ctx.core, number, ctx.user))


def _report(ctx: Ctx) -> None:
    words = ctx.rest.split()
    days = [w for w in words if len(w) == 10 and w[4:5] == "-" and w[7:8] == "-"]
    others = [w for w in words if w not in days]
    if len(days) > 2 or len(others) > 1:
        raise InvalidInput("Usage: `/incident report [FROM] [TO] [PLAYBOOK]`, dates as YYYY-MM-DD (UTC), "
                           "like `/incident report 2026-11-01 2026-11-30`.")
    link, period = reports.report_link(ctx.core, ctx.user, *(days + [None, None])[:2],
                                       playbook=others[0].lower() if others else None)
    ctx.reply(ctx.core.render.text("slack/report_link.txt.j2", link=link, period=period))


def _update(ctx: Ctx) -> None:
    """`/incident update` opens the form; `/incident update CURRENT STATE…` posts at once (the
    next update due after the severity's cadence)."""
    number = ctx.incident()
    if not ctx.rest.strip():
        ctx.ack()
        modals.open_update(ctx.core, ctx.trigger_id, number, ctx.user)
        return
    ctx.said(updates.post_status_update(ctx.core, number, ctx.user, ctx.rest))


def _timeline(ctx: Ctx) -> None:
    number = ctx.incident()
    ctx.said(timeline.post_to_channel(ctx.core, number, ctx.user, (ctx.rest.strip() or "md").lower()))


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
    "report": _report,
    "update": _update,
    "viewed": _viewed,
    "wellbeing": _wellbeing,
    "break": _break,
}

__all__ = ["register", "SUBCOMMANDS"]
