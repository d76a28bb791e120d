"""Slack listeners: parse the payload, call the core, render the answer. No SQL, no rules."""

from __future__ import annotations

from slack_bolt import App

from bot.core import Core

from . import actions, commands, events, shortcuts, views


def register(app: App, core: Core) -> None:
    commands.register(app, core)
    actions.register(app, core)
    views.register(app, core)
    shortcuts.register(app, core)
    events.register(app, core)
