"""Outcomes of the core into what a person reads in Slack (templates/slack/outcome.txt.j2)."""

from __future__ import annotations

from bot.core import Core
from bot.outcomes import Outcome


def say(core: Core, outcome: Outcome) -> str:
    return core.render.text("slack/outcome.txt.j2", outcome=outcome)
