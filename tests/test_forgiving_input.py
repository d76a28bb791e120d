"""Input people type at 3 a.m.: a typo gets the command it meant, `severity 2` is sev2, a select
value in any case is the option, and status lines do not run together."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

LEAD, SPEC = "U0LEAD001", "U0SPEC001"


def test_forgiving_input(running):
    typo = running.driver.command(LEAD, "delcare csam-report Hash match 1").message.text
    assert "Did you mean `/incident declare`?" in typo and "Playbooks:" not in typo
    assert running.driver.command(LEAD, "declare csam-report Hash match 8812").ok
    channel = running.provisioned(1)
    say = lambda user, text: running.driver.command(user, text, channel=channel.id).message.text  # noqa: E731
    assert "SEV2" in say(LEAD, "severity 2")
    assert "done" in say(SPEC, "done confirm case_id=C-1 category=a1 human_viewed=ALL")
    [done] = [e for e in running.timeline(1) if e["kind"] == "step_done"]
    assert done["data"]["values"] == {"case_id": "C-1", "category": "A1", "human_viewed": "all"}
    running.driver.command(LEAD, "page legal Need a decision", channel=channel.id)
    status = running.driver.command(LEAD, "status", channel=channel.id).message
    clocks = [b["text"]["text"] for b in status.blocks if b.get("type") == "section"][-1]
    assert "is overdue.*Open pages:*" not in clocks and "\n*Open pages:*" in clocks
