"""The pinned checklist stays within Slack's 50 blocks however long the playbook (long ones fold
their done and waiting steps), and every step id stays visible."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.incidents.checklist import MAX_BLOCKS, render_checklist
from bot.incidents.views import ClockLine, IncidentView, StepLine
from bot.render import Renderer

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def _view(done: int, active: int, waiting: int, status: str = "open") -> IncidentView:
    view = IncidentView(number=7, ref="INC-7", title="Hash match", playbook_id="long", playbook_title="Long",
                        severity="sev1", status=status, declared_at=NOW, declared_by="U0LEAD001",
                        channel_id="C1", channel_name="inc-7-long", resolution=None, now=NOW)
    states = ["done"] * done + ["active"] * active + ["waiting"] * waiting
    for n, state in enumerate(states):
        clock = ClockLine("page Legal on-call", "4h", "declared", law=True, basis="law: x",
                          due_at=NOW + timedelta(hours=n))
        view.steps.append(StepLine(
            id=f"step-{n:02d}", title=f"Step number {n} " + "x" * 60, owner_role="legal", owner_label="Legal",
            owner_users=["U0LEGAL01"], state=state, done_by="U0LEGAL01" if state == "done" else None,
            done_at=NOW if state == "done" else None, skipped_reason=None,
            values={"report_id": "123"} if state == "done" else {}, waiting_on=["step-00"] if state == "waiting" else [],
            has_fields=True, labels={"report_id": "Report ID"}, recorded=["Classification"] if state == "done" else [],
            clocks=[clock] if state != "done" else []))
    return view


@pytest.mark.parametrize("done,active,waiting,status", [
    (3, 2, 3, "open"), (20, 5, 20, "open"), (0, 30, 30, "open"), (60, 0, 0, "closed"), (0, 60, 0, "open")])
def test_the_checklist_fits_in_50_blocks_and_shows_every_step_id(done, active, waiting, status):
    core = SimpleNamespace(render=Renderer(TEMPLATES))
    view = _view(done, active, waiting, status)
    _, blocks = render_checklist(core, view)
    assert len(blocks) <= MAX_BLOCKS
    assert blocks[-1]["block_id"] == "footer"
    for block in blocks:
        text = (block.get("text") or {}).get("text", "")
        assert len(text) <= 3000
    shown = str(blocks)
    missing = [s.id for s in view.steps if f"`{s.id}`" not in shown]  # (folded ones are listed by id)
    assert not missing or (active > MAX_BLOCKS - 7), missing  # only more active steps than blocks hide some
    if done + active + waiting <= 10:  # a short playbook: one section per step, buttons for active steps
        assert sum(1 for b in blocks if str(b.get("block_id", "")).startswith("act:")) == active
    assert "Report ID: `123`" in shown and "`Classification`" not in shown or done == 0 or done > 15
