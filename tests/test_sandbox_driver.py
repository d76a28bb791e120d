"""The driver: Slack-signed requests to a bot, payload shapes, and what Slack shows afterwards."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, jsonify, request
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from runtime.serving import BackgroundServer
from sandbox.server import Sandbox

ANA, BEN, CHLOE, OSCAR, BOT = "U0LEAD001", "U0DEPU001", "U0SPEC001", "U0OUTSID1", "U0BOT0001"
OPS = "C0OPS0001"
SECRET = "sandbox-signing-secret"
COMMAND_FIELDS = {
    "token", "team_id", "team_domain", "channel_id", "channel_name", "user_id", "user_name",
    "command", "text", "api_app_id", "is_enterprise_install", "response_url", "trigger_id",
}


class TinyBot:
    """A signed-request receiver: verifies like Bolt (401 on a bad signature), records, answers."""

    def __init__(self, secret: str = SECRET) -> None:
        self.verifier = SignatureVerifier(secret)
        self.received: list[dict[str, Any]] = []
        self.answer: Callable[[dict[str, Any]], Any] = lambda data: ""
        app = Flask("tinybot")

        @app.post("/slack/events")
        def events():
            raw = request.get_data()
            if not self.verifier.is_valid_request(raw, dict(request.headers)):
                return jsonify({"error": "invalid request"}), 401
            if request.mimetype == "application/json":
                data = json.loads(raw)
            elif "payload" in request.form:
                data = json.loads(request.form["payload"])
            else:
                data = request.form.to_dict()
            self.received.append({"data": data, "headers": dict(request.headers)})
            return self.answer(data)

        self.server = BackgroundServer(app, threads=4).start()
        self.url = self.server.url + "slack/events"

    def last(self) -> dict[str, Any]:
        return self.received[-1]["data"]

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def bot():
    tiny = TinyBot()
    yield tiny
    tiny.stop()


@pytest.fixture
def sandbox(bot):
    with Sandbox(port=0, bot_url=bot.url, event_retry_delays=(0.05, 0.05)) as sb:
        yield sb


@pytest.fixture
def client(sandbox):
    return WebClient(base_url=sandbox.api_url, token=sandbox.bot_token)


def checklist(client: WebClient, channel: str = OPS) -> str:
    blocks = [
        {"type": "section", "block_id": "step-confirm", "text": {"type": "mrkdwn", "text": "*Confirm*"},
         "accessory": {"type": "button", "action_id": "step_skip", "text": {"type": "plain_text", "text": "Skip"}, "value": "confirm"}},
        {"type": "actions", "block_id": "steps", "elements": [
            {"type": "button", "action_id": "step_done", "text": {"type": "plain_text", "text": "Done"}, "value": "confirm", "style": "primary"},
            {"type": "button", "action_id": "step_done", "text": {"type": "plain_text", "text": "Done"}, "value": "report"},
            {"type": "static_select", "action_id": "sev", "placeholder": {"type": "plain_text", "text": "Severity"},
             "options": [{"text": {"type": "plain_text", "text": "SEV1"}, "value": "sev1"},
                         {"text": {"type": "plain_text", "text": "SEV2"}, "value": "sev2"}]},
        ]},
    ]
    return client.chat_postMessage(channel=channel, text="checklist", blocks=blocks)["ts"]


# ---------------------------------------------------------------- signing


def test_requests_are_signed_and_bad_ones_refused(sandbox, bot):
    ok = sandbox.driver.command(ANA, "help")
    assert ok.status == 200 and ok.elapsed > 0
    headers = bot.received[-1]["headers"]
    assert headers["X-Slack-Signature"].startswith("v0=")
    stale = sandbox.driver.command(ANA, "help", timestamp=int(time.time()) - 6 * 60)
    assert stale.status == 401 and stale.body == {"error": "invalid request"}
    future = sandbox.driver.command(ANA, "help", timestamp=int(time.time()) + 6 * 60)
    assert future.status == 401
    forged = sandbox.driver.command(ANA, "help", signature="v0=" + "0" * 64)
    assert forged.status == 401
    assert len(bot.received) == 1
    assert sandbox.driver.event({"type": "app_mention"}, signature="v0=bad").status == 401
    assert sandbox.driver.url_verification("abc", timestamp=1).status == 401


def test_signature_matches_slack_sdk(sandbox):
    body = b"token=x&text=hello"
    expected = SignatureVerifier(SECRET).generate_signature(timestamp="1700000000", body=body.decode())
    assert sandbox.driver.sign(body, 1700000000) == expected


# ---------------------------------------------------------------- commands


def test_command_payload_and_answers(sandbox, bot, client):
    bot.answer = lambda data: "Usage: /incident declare …"
    result = sandbox.driver.command(ANA, "help me", channel=OPS)
    form = bot.last()
    assert set(form) == COMMAND_FIELDS
    assert (form["command"], form["text"], form["user_id"], form["user_name"]) == ("/incident", "help me", ANA, "ana")
    assert (form["team_id"], form["team_domain"], form["channel_name"]) == ("T0SANDBOX", "safeguard-sandbox", "t-and-s-ops")
    assert form["response_url"].startswith(sandbox.base_url + "_sandbox/response/")
    assert result.message.text == "Usage: /incident declare …" and result.message.ephemeral_to == ANA
    assert [m.text for m in sandbox.state.ephemeral(OPS, ANA)] == ["Usage: /incident declare …"]

    # the trigger_id opens a modal for that user; the response_url posts for them
    view = client.views_open(trigger_id=form["trigger_id"], view={
        "type": "modal", "title": {"type": "plain_text", "text": "Hi"}, "blocks": []})
    assert sandbox.state.open_views(ANA)[0].id == view["view"]["id"]

    bot.answer = lambda data: {"response_type": "in_channel", "text": "INC-1 declared"}
    shown = sandbox.driver.command(ANA, "declare csam-report x")
    assert shown.message.ephemeral_to is None and sandbox.state.last_message(OPS).text == "INC-1 declared"

    bot.answer = lambda data: ""
    assert sandbox.driver.command(ANA, "note x").message is None

    with pytest.raises(ValueError):
        sandbox.driver.command(OSCAR, "help", channel=OPS)  # oscar is not in that channel


def test_slow_answers_time_out_like_slack(sandbox, bot):
    sandbox.driver.ack_deadline = 0.1

    def slow(data):
        time.sleep(0.2)
        return "too late"

    bot.answer = slow
    result = sandbox.driver.command(ANA, "status")
    assert result.timed_out and not result.ok and result.message is None
    assert sandbox.state.ephemeral(OPS, ANA) == []


# ---------------------------------------------------------------- interactions


def test_click_builds_block_actions_from_the_stored_message(sandbox, bot, client):
    ts = checklist(client)
    result = sandbox.driver.click(BEN, OPS, ts, "step_done", value="report")
    assert result.ok
    payload = bot.last()
    assert payload["type"] == "block_actions"
    assert payload["user"] == {"id": BEN, "username": "ben", "name": "ben", "team_id": "T0SANDBOX"}
    assert payload["team"] == {"id": "T0SANDBOX", "domain": "safeguard-sandbox"}
    assert payload["container"] == {"type": "message", "message_ts": ts, "channel_id": OPS, "is_ephemeral": False}
    assert payload["channel"] == {"id": OPS, "name": "t-and-s-ops"}
    assert payload["message"]["ts"] == ts and len(payload["message"]["blocks"]) == 2
    action = payload["actions"][0]
    assert (action["action_id"], action["block_id"], action["type"], action["value"]) == ("step_done", "steps", "button", "report")
    assert action["text"]["text"] == "Done" and action["action_ts"]
    assert payload["trigger_id"] and payload["response_url"] and payload["api_app_id"] == "A0SAFEGRD"
    assert payload["state"]["values"]["steps"]["sev"] == {"type": "static_select", "selected_option": None}

    sandbox.driver.click(BEN, OPS, ts, "sev", value="sev2")
    chosen = bot.last()["actions"][0]
    assert chosen["selected_option"]["value"] == "sev2" and chosen["selected_option"]["text"]["text"] == "SEV2"

    sandbox.driver.click(BEN, OPS, ts, "step_skip")
    assert bot.last()["actions"][0]["block_id"] == "step-confirm"

    with pytest.raises(ValueError, match="no element"):
        sandbox.driver.click(BEN, OPS, ts, "nope")

    # the response_url of a click replaces the message it came from
    import httpx

    httpx.post(payload["response_url"], json={"replace_original": True, "text": "done"})
    assert sandbox.state.message(OPS, ts).text == "done"


def test_click_on_an_ephemeral_message(sandbox, bot, client):
    eph = client.chat_postEphemeral(channel=OPS, user=ANA, text="confirm?", blocks=[
        {"type": "actions", "elements": [{"type": "button", "action_id": "yes", "text": {"type": "plain_text", "text": "Yes"}}]}])
    sandbox.driver.click(ANA, OPS, eph["message_ts"], "yes")
    payload = bot.last()
    assert payload["container"]["is_ephemeral"] is True and "message" not in payload
    with pytest.raises(ValueError):
        sandbox.driver.click(BEN, OPS, eph["message_ts"], "yes")  # Ben cannot see it


DECLARE = {
    "type": "modal",
    "callback_id": "declare",
    "title": {"type": "plain_text", "text": "Declare an incident"},
    "submit": {"type": "plain_text", "text": "Declare"},
    "private_metadata": '{"channel": "C0OPS0001"}',
    "blocks": [
        {"type": "input", "block_id": "summary", "label": {"type": "plain_text", "text": "Summary"},
         "element": {"type": "plain_text_input", "action_id": "value"}},
        {"type": "input", "block_id": "playbook", "label": {"type": "plain_text", "text": "Playbook"},
         "element": {"type": "static_select", "action_id": "value", "options": [
             {"text": {"type": "plain_text", "text": "Confirmed CSAM"}, "value": "csam-report"},
             {"text": {"type": "plain_text", "text": "Sextortion"}, "value": "sextortion"}]}},
        {"type": "input", "block_id": "lead", "optional": True, "label": {"type": "plain_text", "text": "Lead"},
         "element": {"type": "users_select", "action_id": "value"}},
        {"type": "input", "block_id": "people", "optional": True, "label": {"type": "plain_text", "text": "People"},
         "element": {"type": "multi_users_select", "action_id": "value"}},
        {"type": "input", "block_id": "flags", "optional": True, "label": {"type": "plain_text", "text": "Flags"},
         "element": {"type": "checkboxes", "action_id": "value", "options": [
             {"text": {"type": "plain_text", "text": "Minor involved"}, "value": "minor"}]}},
        {"type": "actions", "block_id": "more", "elements": [
            {"type": "button", "action_id": "add_step", "text": {"type": "plain_text", "text": "Add"}}]},
    ],
}


def open_modal(sandbox, client, user=ANA, view=DECLARE) -> str:
    return client.views_open(trigger_id=sandbox.state.mint_trigger(user), view=view)["view"]["id"]


def test_submit_view_types_values_and_follows_the_answer(sandbox, bot, client):
    view_id = open_modal(sandbox, client)
    refused = sandbox.driver.submit_view(ANA, view_id, {"summary": {"value": "x"}})
    assert not refused.delivered and "playbook" in refused.errors and bot.received == []

    bot.answer = lambda data: {"response_action": "errors", "errors": {"summary": "Too short"}}
    values = {
        "summary": {"value": "Reported image"},
        "playbook": {"value": "csam-report"},
        "lead": {"value": BEN},
        "people": {"value": [CHLOE, "U0SPEC002"]},
        "flags": {"value": ["minor"]},
    }
    result = sandbox.driver.submit_view(ANA, view_id, values)
    assert result.errors == {"summary": "Too short"} and result.view.id == view_id
    payload = bot.last()
    assert payload["type"] == "view_submission" and payload["response_urls"] == []
    view = payload["view"]
    assert (view["id"], view["callback_id"], view["type"]) == (view_id, "declare", "modal")
    assert view["private_metadata"] == '{"channel": "C0OPS0001"}' and view["hash"]
    state = view["state"]["values"]
    assert state["summary"]["value"] == {"type": "plain_text_input", "value": "Reported image"}
    assert state["playbook"]["value"] == {
        "type": "static_select",
        "selected_option": {"text": {"type": "plain_text", "text": "Confirmed CSAM", "emoji": True}, "value": "csam-report"},
    }
    assert state["lead"]["value"] == {"type": "users_select", "selected_user": BEN}
    assert state["people"]["value"] == {"type": "multi_users_select", "selected_users": [CHLOE, "U0SPEC002"]}
    assert state["flags"]["value"]["selected_options"][0]["value"] == "minor"
    assert [v.id for v in sandbox.state.open_views(ANA)] == [view_id]

    bot.answer = lambda data: {"response_action": "update", "view": {**DECLARE, "callback_id": "declare-2"}}
    updated = sandbox.driver.submit_view(ANA, view_id, values)
    assert updated.view.id == view_id and updated.view.callback_id == "declare-2"

    bot.answer = lambda data: {"response_action": "push", "view": {**DECLARE, "callback_id": "confirm"}}
    pushed = sandbox.driver.submit_view(ANA, view_id, values)
    assert [v.callback_id for v in sandbox.state.open_views(ANA)] == ["declare-2", "confirm"]

    bot.answer = lambda data: ""
    closed = sandbox.driver.submit_view(ANA, pushed.view.id, values)
    assert closed.view is None and [v.id for v in sandbox.state.open_views(ANA)] == [view_id]

    bot.answer = lambda data: {"response_action": "clear"}
    sandbox.driver.submit_view(ANA, view_id, values)
    assert sandbox.state.open_views(ANA) == []

    with pytest.raises(ValueError):
        sandbox.driver.submit_view(ANA, view_id, values)  # no longer open


def test_click_in_a_modal_and_close(sandbox, bot, client):
    view_id = open_modal(sandbox, client, view={**DECLARE, "notify_on_close": True})
    sandbox.driver.click_view(ANA, view_id, "add_step")
    payload = bot.last()
    assert payload["container"] == {"type": "view", "view_id": view_id}
    assert payload["view"]["id"] == view_id and "response_url" not in payload
    closed = sandbox.driver.close_view(ANA, view_id)
    assert closed.ok and bot.last()["type"] == "view_closed"
    assert sandbox.state.open_views(ANA) == []


def test_message_shortcut(sandbox, bot, client):
    ts = sandbox.driver.post_as(CHLOE, OPS, "suspicious report 123").message.ts
    sandbox.driver.shortcut(CHLOE, OPS, ts, "declare_from_message")
    payload = bot.last()
    assert payload["type"] == "message_action" and payload["callback_id"] == "declare_from_message"
    assert payload["message"]["text"] == "suspicious report 123" and payload["message_ts"] == ts
    assert payload["channel"]["id"] == OPS and payload["trigger_id"] and payload["response_url"]


# ---------------------------------------------------------------- events


def test_event_callbacks(sandbox, bot, client):
    ts = client.chat_postMessage(channel=OPS, text="checklist")["ts"]
    result = sandbox.driver.react(BEN, OPS, ts, ":white_check_mark:")
    callback = bot.last()
    assert result.ok and callback["type"] == "event_callback"
    assert set(callback) >= {"token", "team_id", "api_app_id", "event", "event_id", "event_time", "authorizations"}
    assert callback["authorizations"][0]["user_id"] == BOT
    assert callback["event"] == {
        "type": "reaction_added", "user": BEN, "reaction": "white_check_mark",
        "item": {"type": "message", "channel": OPS, "ts": ts}, "item_user": BOT,
        "event_ts": callback["event"]["event_ts"],
    }
    assert sandbox.state.message(OPS, ts).reactions == [{"name": "white_check_mark", "users": [BEN], "count": 1}]

    retry = sandbox.driver.event({"type": "app_mention", "text": "hi"}, retry_num=1, event_id=callback["event_id"])
    assert retry.ok and bot.received[-1]["headers"]["X-Slack-Retry-Num"] == "1"
    assert bot.last()["event_id"] == callback["event_id"]
    assert sandbox.driver.event({"type": "app_mention"}).payload["event_id"] != callback["event_id"]

    bot.answer = lambda data: data.get("challenge", "")
    assert sandbox.driver.url_verification("chal-123").text == "chal-123"

    lounge = sandbox.state.add_channel("lounge", members=[ANA, BEN]).id
    before = len(bot.received)
    quiet = sandbox.driver.react(BEN, lounge, sandbox.driver.post_as(ANA, lounge, "hi").message.ts, "eyes")
    assert not quiet.delivered and len(bot.received) == before  # the bot is not in that channel

    mention = sandbox.driver.post_as(ANA, OPS, f"<@{BOT}> status", files=[{"name": "shot.png", "mimetype": "image/png"}])
    assert mention.ok and bot.last()["event"]["type"] == "app_mention"
    assert mention.message.files[0]["name"] == "shot.png"


def test_invites_send_member_joined_channel_after_the_answer(sandbox, bot, client):
    cid = client.conversations_create(name="inc-3-x", is_private=True)["channel"]["id"]
    client.conversations_invite(channel=cid, users=f"{ANA},{CHLOE}")
    sandbox.events.wait()
    events = [r["data"]["event"] for r in bot.received]
    assert [(e["type"], e["user"], e["channel"], e["channel_type"], e["inviter"]) for e in events] == [
        ("member_joined_channel", ANA, cid, "G", BOT),
        ("member_joined_channel", CHLOE, cid, "G", BOT),
    ]
    assert all(e["team"] == "T0SANDBOX" for e in events)


def test_failed_events_are_retried(sandbox, bot, client):
    answers = iter([("", 500), ("", 200)])
    bot.answer = lambda data: next(answers)
    cid = client.conversations_create(name="inc-4-x")["channel"]["id"]
    client.conversations_invite(channel=cid, users=ANA)
    sandbox.events.wait()
    assert [r["headers"].get("X-Slack-Retry-Num") for r in bot.received] == [None, "1"]
    assert [r["data"]["event_id"] for r in bot.received][0] == bot.received[1]["data"]["event_id"]
    assert sandbox.deliveries[-1].ok and len(sandbox.deliveries[-1].attempts) == 2


def test_no_events_when_disabled(bot):
    with Sandbox(bot_url=bot.url, emit_events=False) as sb:
        client = WebClient(base_url=sb.api_url, token=sb.bot_token)
        cid = client.conversations_create(name="inc-5-x")["channel"]["id"]
        client.conversations_invite(channel=cid, users=ANA)
        sb.events.wait()
    assert bot.received == []


def test_humans_joining_on_their_own(sandbox, bot):
    result = sandbox.driver.join(OSCAR, OPS)
    assert result.ok and bot.last()["event"]["type"] == "member_joined_channel"
    assert "inviter" not in bot.last()["event"] and OSCAR in sandbox.state.members(OPS)
    assert sandbox.state.messages(OPS, system=True)[-1].subtype == "channel_join"
    assert sandbox.state.messages(OPS) == []  # notices are left out by default
    with pytest.raises(ValueError):
        sandbox.driver.join(OSCAR, OPS)
