"""Opening modals: the declare form, a step's fields, a skip reason, and the confirmations of
the irreversible acts (Undo, Close). Each checks the policy before it opens."""

from __future__ import annotations

import json
from typing import Any

from bot import wellbeing
from bot.core import Core
from bot.durations import format_duration
from bot.errors import InvalidInput, SlackError
from bot.incidents import lifecycle, queries, steps, updates
from bot.policy import authorize


def _open(core: Core, trigger_id: str, view: dict[str, Any], again: str) -> None:
    try:
        core.gateway.open_view(trigger_id, view)
    except SlackError as err:
        if err.code in ("expired_trigger_id", "invalid_trigger_id", "exchanged_trigger_id"):  # Slack allows 3 s
            raise InvalidInput(f"Slack needed the form sooner than the bot could open it; {again}.") from None
        raise


def _meta(**values: Any) -> str:
    return json.dumps(values)


def open_declare(core: Core, trigger_id: str, channel_id: str, *, playbook: str | None = None,
                 summary: str = "", severity: str | None = None) -> None:
    """The declare form; what the command gave (`declare PLAYBOOK` without a summary) filled in."""
    view = core.render.blocks(
        "slack/declare_modal.json.j2",
        playbooks=sorted(core.playbooks.values(), key=lambda p: p.title),
        metadata=_meta(channel=channel_id),
        chosen=core.playbooks.get(playbook or ""), summary=" ".join(summary.split())[:500], severity=severity,
    )
    _open(core, trigger_id, view, "run `/incident declare` again")


def open_step_fields(core: Core, trigger_id: str, incident: int, step_id: str, actor: str,
                     values: dict[str, Any]) -> None:
    step = steps.step_definition(core, incident, step_id)
    authorize(core, incident, actor, "step", step_id=step_id)
    view = core.render.blocks(
        "slack/step_modal.json.j2", step=step, values=steps.prefill(core, incident, step_id, values),
        metadata=_meta(incident=incident, step=step_id), kinds=wellbeing.KINDS,
    )
    _open(core, trigger_id, view, f"run `/incident done {step_id}` again, or give the fields in the command")


def open_skip(core: Core, trigger_id: str, incident: int, step_id: str, actor: str) -> None:
    step = steps.step_definition(core, incident, step_id)
    authorize(core, incident, actor, "step", step_id=step_id)
    view = core.render.blocks("slack/skip_modal.json.j2", step=step, metadata=_meta(incident=incident, step=step_id))
    _open(core, trigger_id, view, f"click again, or type `/incident skip {step_id} REASON`")


def open_undo(core: Core, trigger_id: str, incident: int, step_id: str, actor: str) -> None:
    step = steps.step_definition(core, incident, step_id)
    authorize(core, incident, actor, "step", step_id=step_id)
    view = core.render.blocks("slack/undo_modal.json.j2", step=step, after=steps.waiting_on(core, incident, step_id),
                              metadata=_meta(incident=incident, step=step_id))
    _open(core, trigger_id, view, f"click again, or type `/incident undo {step_id} REASON`")


def open_close(core: Core, trigger_id: str, incident: int, actor: str) -> None:
    preview = lifecycle.close_preview(core, incident, actor)
    view = core.render.blocks("slack/close_modal.json.j2", preview=preview, metadata=_meta(incident=incident))
    _open(core, trigger_id, view, "click again, or type `/incident close`")


def _role_options(core: Core, incident: int) -> list[dict[str, Any]]:
    """The roles of the incident's playbook, then the organisation's others, by label."""
    _, playbook_roles = queries.incident_facts(core, incident)
    others = sorted(set(core.config.roles) - set(playbook_roles))
    return [{"text": {"type": "plain_text", "text": core.role_label(r)[:75]}, "value": r}
            for r in [*playbook_roles, *others]]


def open_update(core: Core, trigger_id: str, incident: int, actor: str) -> None:
    authorize(core, incident, actor, "note")
    severity, _ = queries.incident_facts(core, incident)
    every = updates.cadence(core, severity)
    default = format_duration(every) if every else "1h"
    choices = list(dict.fromkeys([*updates.NEXT_CHOICES, default]))
    view = core.render.blocks("slack/update_modal.json.j2", ref=f"INC-{incident}", choices=choices, default=default,
                              severity=severity, metadata=_meta(incident=incident))
    _open(core, trigger_id, view, "click again, or type `/incident update CURRENT STATE…`")


def open_page(core: Core, trigger_id: str, incident: int, actor: str) -> None:
    authorize(core, incident, actor, "page")
    view = core.render.blocks("slack/page_modal.json.j2", roles=_role_options(core, incident),
                              metadata=_meta(incident=incident))
    _open(core, trigger_id, view, "click again, or type `/incident page ROLE REASON…`")


def open_assign(core: Core, trigger_id: str, incident: int, actor: str) -> None:
    authorize(core, incident, actor, "assign")
    view = core.render.blocks("slack/assign_modal.json.j2", roles=_role_options(core, incident),
                              metadata=_meta(incident=incident))
    _open(core, trigger_id, view, "click again, or type `/incident assign ROLE @user`")


def open_resolve(core: Core, trigger_id: str, incident: int, actor: str) -> None:
    authorize(core, incident, actor, "resolve")
    view = core.render.blocks("slack/resolve_modal.json.j2", metadata=_meta(incident=incident))
    _open(core, trigger_id, view, "click again, or type `/incident resolve SUMMARY…`")
