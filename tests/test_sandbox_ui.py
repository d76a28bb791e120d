"""The sandbox page and the JSON endpoints behind it."""

from __future__ import annotations

import httpx
import pytest
from slack_sdk import WebClient

from sandbox.server import Sandbox

ANA, OSCAR = "U0LEAD001", "U0OUTSID1"
OPS = "C0OPS0001"


@pytest.fixture
def sandbox():
    with Sandbox(port=0) as sb:
        yield sb


def test_page_and_static_files(sandbox):
    page = httpx.get(sandbox.base_url)
    assert page.status_code == 200 and "<title>Safeguard sandbox workspace</title>" in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    for name in ("app.js", "blocks.js", "mrkdwn.js", "app.css"):
        assert httpx.get(sandbox.base_url + "_sandbox/static/" + name).status_code == 200
    assert ".innerHTML" not in httpx.get(sandbox.base_url + "_sandbox/static/mrkdwn.js").text


def test_state_shows_what_the_chosen_user_sees(sandbox):
    client = WebClient(base_url=sandbox.api_url, token=sandbox.bot_token)
    client.chat_postMessage(channel=OPS, text="for everyone")
    client.chat_postEphemeral(channel=OPS, user=ANA, text="for ana")
    client.chat_postMessage(channel=ANA, text="a DM for ana")
    secret = client.conversations_create(name="inc-1-x", is_private=True)["channel"]["id"]

    def state(user, channel):
        return httpx.get(sandbox.base_url + "_sandbox/ui/state", params={"user": user, "channel": channel}).json()

    ana = state(ANA, OPS)
    assert [m["text"] for m in ana["messages"]] == ["for everyone", "for ana"]
    assert ana["messages"][1]["ephemeral"] is True
    assert [m["text"] for m in ana["dms"]] == ["a DM for ana"]
    assert secret not in {c["id"] for c in ana["channels"]}  # private, ana is not in it
    oscar = state(OSCAR, OPS)
    assert [m["text"] for m in oscar["messages"]] == ["for everyone"] and oscar["dms"] == []
    assert state(ANA, secret)["channel"]["id"] != secret
    # the app's Home tab, once the app published one for the person (only theirs)
    assert ana["home"] is None
    client.views_publish(user_id=ANA, view={"type": "home", "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Your open incidents"}}]})
    assert "Your open incidents" in str(state(ANA, OPS)["home"]["blocks"])
    assert state(OSCAR, OPS)["home"] is None


def test_actions_need_json_and_a_bot(sandbox):
    url = sandbox.base_url + "_sandbox/ui/command"
    assert httpx.post(url, data={"user": ANA, "channel": OPS, "text": "/incident help"}).status_code == 415
    refused = httpx.post(url, json={"user": ANA, "channel": OPS, "text": "/incident help"})
    assert refused.status_code == 400 and "bot URL" in refused.json()["error"]
    home = httpx.post(sandbox.base_url + "_sandbox/ui/home", json={"user": ANA})
    assert home.status_code == 400 and "bot URL" in home.json()["error"]
