"""A real Bolt app against the sandbox: Bolt must accept every payload the driver sends."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from flask import Flask, request
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_sdk import WebClient

from runtime.serving import BackgroundServer
from sandbox.server import Sandbox

ANA, BEN, BOT = "U0LEAD001", "U0DEPU001", "U0BOT0001"
OPS = "C0OPS0001"

MODAL = {
    "type": "modal",
    "callback_id": "declare",
    "title": {"type": "plain_text", "text": "Declare"},
    "submit": {"type": "plain_text", "text": "Declare"},
    "blocks": [
        {"type": "input", "block_id": "summary", "label": {"type": "plain_text", "text": "Summary"},
         "element": {"type": "plain_text_input", "action_id": "value"}},
    ],
}


def eventually(check: Callable[[], object], timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.01)


@pytest.fixture
def world():
    sandbox = Sandbox(port=0).start()
    seen: list[dict] = []
    app = App(
        token=sandbox.bot_token,
        signing_secret=sandbox.signing_secret,
        client=WebClient(base_url=sandbox.api_url, token=sandbox.bot_token),
    )

    @app.command("/incident")
    def incident(ack, body, client, respond, command):
        if command["text"] == "declare":
            ack()
            client.views_open(trigger_id=body["trigger_id"], view=MODAL)
        elif command["text"] == "checklist":
            ack()
            client.chat_postMessage(
                channel=command["channel_id"], text="checklist", unfurl_links=False, unfurl_media=False,
                blocks=[{"type": "actions", "block_id": "steps", "elements": [
                    {"type": "button", "action_id": "step_done", "value": "confirm",
                     "text": {"type": "plain_text", "text": "Done"}}]}],
            )
        else:
            ack(f"Usage for <@{command['user_id']}>")
            respond(text="later, via response_url")

    @app.view("declare")
    def declare(ack, view, body, client):
        summary = view["state"]["values"]["summary"]["value"]["value"]
        if len(summary) < 5:
            ack(response_action="errors", errors={"summary": "Too short"})
            return
        ack()
        client.chat_postMessage(channel=OPS, text=f"Declared by <@{body['user']['id']}>: {summary}")

    @app.action("step_done")
    def step_done(ack, respond, body):
        ack()
        respond(replace_original=True, text=f"{body['actions'][0]['value']} done by <@{body['user']['id']}>")

    @app.event("member_joined_channel")
    def joined(event):
        seen.append(event)

    @app.event("reaction_added")
    def reacted(event):
        seen.append(event)

    flask_app = Flask("bolt-bot")
    handler = SlackRequestHandler(app)

    @flask_app.post("/slack/events")
    def events():
        return handler.handle(request)

    server = BackgroundServer(flask_app, threads=8).start()
    sandbox.set_bot_url(server.url + "slack/events")
    yield sandbox, seen
    sandbox.stop()
    server.stop()


def test_bolt_accepts_the_sandbox(world):
    sandbox, seen = world
    ws, driver = sandbox.state, sandbox.driver

    usage = driver.command(ANA, "help")
    assert usage.ok and usage.message.text == f"Usage for <@{ANA}>"
    assert eventually(lambda: len(ws.ephemeral(OPS, ANA)) == 2)

    assert driver.command(ANA, "declare").ok
    view = eventually(lambda: ws.open_views(ANA))[0]
    refused = driver.submit_view(ANA, view.id, {"summary": {"value": "abc"}})
    assert refused.errors == {"summary": "Too short"}
    accepted = driver.submit_view(ANA, view.id, {"summary": {"value": "Reported image"}})
    assert accepted.ok and accepted.view is None and ws.open_views(ANA) == []
    assert eventually(lambda: getattr(ws.last_message(OPS), "text", None) == f"Declared by <@{ANA}>: Reported image")

    driver.command(BEN, "checklist")
    message = eventually(lambda: next((m for m in ws.messages(OPS) if m.text == "checklist"), None))
    assert message.unfurl_links is False
    assert driver.click(BEN, OPS, message.ts, "step_done").ok
    assert eventually(lambda: ws.message(OPS, message.ts).text == f"confirm done by <@{BEN}>")

    assert driver.react(ANA, OPS, message.ts, "eyes").ok
    client = WebClient(base_url=sandbox.api_url, token=sandbox.bot_token)
    cid = client.conversations_create(name="inc-1-csam-report", is_private=True)["channel"]["id"]
    client.conversations_invite(channel=cid, users=ANA)
    assert eventually(lambda: [e["type"] for e in seen] == ["reaction_added", "member_joined_channel"])
    assert sandbox.events.wait() and all(d.ok for d in sandbox.deliveries)
