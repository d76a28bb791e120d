"""Opening modals (the declare form, a step's fields, a skip reason)."""

from __future__ import annotations

import json
from typing import Any

from bot.core import Core
from bot.incidents import steps


def open_declare(core: Core, trigger_id: str, channel_id: str) -> None:
    view = core.render.blocks(
        "slack/declare_modal.json.j2",
        playbooks=sorted(core.playbooks.values(), key=lambda p: p.title),
        metadata=json.dumps({"channel": channel_id}),
    )
    core.gateway.open_view(trigger_id, view)


def open_step_fields(core: Core, trigger_id: str, incident: int, step_id: str, values: dict[str, Any]) -> None:
    step = steps.step_definition(core, incident, step_id)
    view = core.render.blocks(
        "slack/step_modal.json.j2", step=step, values=values,
        metadata=json.dumps({"incident": incident, "step": step_id}),
    )
    core.gateway.open_view(trigger_id, view)


def open_skip(core: Core, trigger_id: str, incident: int, step_id: str) -> None:
    step = steps.step_definition(core, incident, step_id)
    view = core.render.blocks(
        "slack/skip_modal.json.j2", step=step,
        metadata=json.dumps({"incident": incident, "step": step_id}),
    )
    core.gateway.open_view(trigger_id, view)
