"""The fuzzer's lists (tests/fuzz_support.py) name everything the bot registers: a new listener or
subcommand the fuzzer does not send is a test failure here, not a crash found later in CI.

The listeners are recorded while `handlers.register` wires them onto a Bolt app that is never
served (no database, no Slack, no network); the subcommands are the command's own table.
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

from slack_bolt import App

from handlers import register
from handlers.commands import SUBCOMMANDS as BOT_SUBCOMMANDS
from tests import fuzz_support as fuzz


class RecordingApp(App):
    """A Bolt app that notes the first argument of every listener registration."""

    def __init__(self) -> None:
        super().__init__(token="xoxb-offline", signing_secret="offline", token_verification_enabled=False)
        self.seen: dict[str, list[str]] = defaultdict(list)

    def _note(self, kind: str, constraint):
        self.seen[kind].append(constraint if isinstance(constraint, str) else repr(constraint))

    def command(self, command, *args, **kwargs):
        self._note("commands", command)
        return super().command(command, *args, **kwargs)

    def action(self, constraints, *args, **kwargs):
        self._note("actions", constraints)
        return super().action(constraints, *args, **kwargs)

    def view(self, constraints, *args, **kwargs):
        self._note("views", constraints)
        return super().view(constraints, *args, **kwargs)

    def shortcut(self, constraints, *args, **kwargs):
        self._note("shortcuts", constraints)
        return super().shortcut(constraints, *args, **kwargs)

    def event(self, event, *args, **kwargs):
        self._note("events", event)
        return super().event(event, *args, **kwargs)

    def _unsupported(self, *args, **kwargs):
        raise AssertionError("a listener of a kind the fuzzer does not send at all: teach tests/fuzz_support.py it")

    message = options = block_suggestion = view_closed = attachment_action = dialog_submission = \
        dialog_suggestion = dialog_cancellation = step = function = global_shortcut = message_shortcut = \
        block_action = view_submission = _unsupported


def registered() -> dict[str, list[str]]:
    app = RecordingApp()
    core = SimpleNamespace(settings=SimpleNamespace(ack_deadline=2.5))  # what registering reads of the core
    returned = register(app, core)
    assert {k: sorted(v) for k, v in returned.items()} == {k: sorted(v) for k, v in app.seen.items()}, \
        "handlers.register's answer (checked against app.yaml) differs from what it registered"
    return dict(app.seen)


FUZZED = {"commands": fuzz.COMMANDS, "actions": fuzz.ACTION_IDS, "views": fuzz.VIEW_CALLBACKS,
          "shortcuts": fuzz.SHORTCUTS, "events": fuzz.EVENTS}


def test_the_fuzzer_sends_every_listener_the_bot_registers():
    seen = registered()
    assert set(seen) == set(FUZZED), f"listener kinds: {sorted(seen)}"
    missing = {kind: sorted(set(names) - set(FUZZED[kind])) for kind, names in seen.items()}
    stale = {kind: sorted(set(FUZZED[kind]) - set(names)) for kind, names in seen.items()}
    assert not any(missing.values()), f"registered but never fuzzed (add them to tests/fuzz_support.py): {missing}"
    assert not any(stale.values()), f"fuzzed but no longer registered: {stale}"


def test_the_fuzzer_sends_every_subcommand():
    assert sorted(fuzz.SUBCOMMANDS) == sorted(BOT_SUBCOMMANDS), (
        f"registered but never fuzzed: {sorted(set(BOT_SUBCOMMANDS) - set(fuzz.SUBCOMMANDS))}; "
        f"fuzzed but gone: {sorted(set(fuzz.SUBCOMMANDS) - set(BOT_SUBCOMMANDS))}")
