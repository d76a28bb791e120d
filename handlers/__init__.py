"""Slack listeners: parse the payload, call the core, render the answer. No SQL, no rules."""

from __future__ import annotations

from slack_bolt import App

from bot.core import Core

from . import actions, commands, context, errors, events, repeats, shortcuts, timing, views


def register(app: App, core: Core) -> dict[str, list[str]]:
    """Middleware, the error handler, then every listener; returns the listeners registered, by
    kind (checked against app.yaml)."""
    timing.register(app, core)  # first: the ack is timed from here
    errors.register(app, core)
    context.register(app, core)
    return {
        "commands": commands.register(app, core),
        "actions": actions.register(app, core) + repeats.register(app, core),
        "views": views.register(app, core),
        "shortcuts": shortcuts.register(app, core),
        "events": events.register(app, core),
    }
