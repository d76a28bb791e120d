"""app.yaml and the listeners agree: everything the manifest sends has a listener, and every
listener that Slack reaches through the manifest is declared in it."""

from __future__ import annotations

import pytest
import yaml

from tests.support import REPO

pytestmark = pytest.mark.e2e

MANIFEST = yaml.safe_load((REPO / "app.yaml").read_text())


def test_manifest_declares_what_the_listeners_handle(running):
    features, settings = MANIFEST["features"], MANIFEST["settings"]
    registered = running.bot.listeners
    assert sorted(c["command"] for c in features["slash_commands"]) == sorted(registered["commands"])
    assert sorted(s["callback_id"] for s in features["shortcuts"]) == sorted(registered["shortcuts"])
    assert sorted(settings["event_subscriptions"]["bot_events"]) == sorted(registered["events"])
    # actions and views come from the bot's own messages and modals: interactivity must be on
    assert settings["interactivity"]["is_enabled"] is True
    assert features["app_home"]["home_tab_enabled"] is True  # app_home_opened → views.publish
    assert registered["actions"] and registered["views"]
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    assert {"commands", "chat:write", "groups:write", "pins:write", "im:write", "files:write"} <= scopes
    urls = {c["url"] for c in features["slash_commands"]} | {settings["interactivity"]["request_url"],
                                                             settings["event_subscriptions"]["request_url"]}
    assert len(urls) == 1 and next(iter(urls)).endswith("/slack/events")


def test_every_manifest_entry_reaches_a_listener(running):
    """Bolt answers 404 to a request no listener matches; none of these may get one."""
    driver, features = running.driver, MANIFEST["features"]
    for command in features["slash_commands"]:
        assert driver.command("U0LEAD001", "help", command=command["command"]).status == 200
    message = running.ws.add_message(running.ws.bot_message("C0OPS0001", text="hello"))
    for shortcut in features["shortcuts"]:
        result = driver.shortcut("U0LEAD001", "C0OPS0001", message.ts, shortcut["callback_id"])
        assert result.status == 200
    samples = {
        "reaction_added": {"type": "reaction_added", "user": "U0LEAD001", "reaction": "eyes",
                           "item": {"type": "message", "channel": "C0OPS0001", "ts": message.ts}},
        "member_joined_channel": {"type": "member_joined_channel", "user": "U0LEAD001", "channel": "C0OPS0001",
                                  "channel_type": "C", "team": "T0SANDBOX"},
        "member_left_channel": {"type": "member_left_channel", "user": "U0LEAD001", "channel": "C0OPS0001",
                                "channel_type": "C", "team": "T0SANDBOX"},
        "app_mention": {"type": "app_mention", "user": "U0LEAD001", "text": "<@U0BOT0001> help",
                        "channel": "C0OPS0001", "ts": message.ts},
        "app_home_opened": {"type": "app_home_opened", "user": "U0LEAD001", "channel": "D0LEAD001", "tab": "home"},
    }
    for name in MANIFEST["settings"]["event_subscriptions"]["bot_events"]:
        assert running.driver.event(samples[name]).status == 200, name
    unknown = running.driver.event({"type": "channel_rename", "channel": {"id": "C0OPS0001", "name": "x"}})
    assert unknown.status == 404


def test_a_retried_event_is_handled_once(running):
    """Slack retries an event it did not see acknowledged; the bot handles each event_id once."""
    from bot.events_seen import first_time

    assert first_time(running.core, "Ev0RETRY1") is True
    assert first_time(running.core, "Ev0RETRY1") is False
    assert first_time(running.core, "Ev0RETRY2") is True
