"""Slack listeners: parse the payload, call the core, render the answer. No SQL, no rules."""

from __future__ import annotations

from slack_bolt import App

from bot.core import Core
from handlers import actions, commands, events, shortcuts, views


def register(app: App, core: Core) -> dict[str, list[str]]:
    """Register every listener; returns what was registered, by kind (checked against app.yaml)."""
    return {
        "commands": commands.register(app, core),
        "actions": actions.register(app, core),
        "views": views.register(app, core),
        "shortcuts": shortcuts.register(app, core),
        "events": events.register(app, core),
    }
