"""Opening modals (the declare form, a step's fields, a skip reason)."""

from __future__ import annotations

import json
from typing import Any

from bot.core import Core
from bot.errors import InvalidInput, SlackError
from bot.incidents import steps


def _open(core: Core, trigger_id: str, view: dict[str, Any], again: str) -> None:
    try:
        core.gateway.open_view(trigger_id, view)
    except SlackError as err:
        if err.code in ("expired_trigger_id", "invalid_trigger_id"):  # Slack allows 3 s to open it
            raise InvalidInput(f"Slack needed the form sooner than the bot could open it; {again}.") from None
        raise


def open_declare(core: Core, trigger_id: str, channel_id: str) -> None:
    view = core.render.blocks(
        "slack/declare_modal.json.j2",
        playbooks=sorted(core.playbooks.values(), key=lambda p: p.title),
        metadata=json.dumps({"channel": channel_id}),
    )
    _open(core, trigger_id, view, "run `/incident declare` again")


def open_step_fields(core: Core, trigger_id: str, incident: int, step_id: str, values: dict[str, Any]) -> None:
    step = steps.step_definition(core, incident, step_id)
    view = core.render.blocks(
        "slack/step_modal.json.j2", step=step, values=values,
        metadata=json.dumps({"incident": incident, "step": step_id}),
    )
    _open(core, trigger_id, view, f"run `/incident done {step_id}` again, or give the fields in the command")


def open_skip(core: Core, trigger_id: str, incident: int, step_id: str) -> None:
    step = steps.step_definition(core, incident, step_id)
    view = core.render.blocks(
        "slack/skip_modal.json.j2", step=step,
        metadata=json.dumps({"incident": incident, "step": step_id}),
    )
    _open(core, trigger_id, view, f"click again, or type `/incident skip {step_id} REASON`")
