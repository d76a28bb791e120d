"""The sandbox refuses what Slack refuses: sizes of messages, blocks, views, topics; outages.

Figures are Slack's documented ones (chat.postMessage, Block Kit reference, views.*,
conversations.setTopic); see sandbox/blockkit.py. Where the sandbox is kinder, the bot's
failures only show up in production.
"""

from __future__ import annotations

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from sandbox.clock import ManualClock
from sandbox.server import Sandbox

ANA, BOT, OPS = "U0LEAD001", "U0BOT0001", "C0OPS0001"

pytestmark = pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def sandbox(clock):
    with Sandbox(port=0, clock=clock) as sb:
        yield sb


@pytest.fixture
def client(sandbox):
    return WebClient(base_url=sandbox.api_url, token=sandbox.bot_token)  # no retries


def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(SlackApiError) as info:
        fn(*args, **kwargs)
    return info.value.response["error"]


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(text: str = "Done", value: str = "step") -> dict:
    return {"type": "actions", "elements": [
        {"type": "button", "action_id": "done", "text": {"type": "plain_text", "text": text}, "value": value}
    ]}


def select(option_text: str) -> dict:
    option = {"text": {"type": "plain_text", "text": option_text}, "value": "a1"}
    return {"type": "actions", "elements": [{"type": "static_select", "action_id": "pick", "options": [option]}]}


def header(text: str) -> dict:
    return {"type": "header", "text": {"type": "plain_text", "text": text}}


def fields(text: str) -> dict:
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": text}]}


# (blocks Slack takes, the same one past its limit): every pair for every message method
BLOCK_LIMITS = {
    "50 blocks": ([{"type": "divider"}] * 50, [{"type": "divider"}] * 51),
    "section text 3,000": ([section("x" * 3000)], [section("x" * 3001)]),
    "section field 2,000": ([fields("x" * 2000)], [fields("x" * 2001)]),
    "section field 3,000": ([fields("x" * 2000)], [fields("x" * 3001)]),
    "header 150": ([header("h" * 150)], [header("h" * 151)]),
    "button value 2,000": ([button(value="v" * 2000)], [button(value="v" * 2001)]),
    "button text 75": ([button(text="t" * 75)], [button(text="t" * 76)]),
    "option text 75": ([select("o" * 75)], [select("o" * 76)]),
}


def send(client: WebClient, method: str, channel: str, **content):
    """Post (or update a fresh message) with `content`, as the bot would."""
    if method == "chat.postMessage":
        return client.chat_postMessage(channel=channel, **content)
    if method == "chat.postEphemeral":
        return client.chat_postEphemeral(channel=channel, user=ANA, **content)
    ts = client.chat_postMessage(channel=channel, text="checklist")["ts"]
    return client.chat_update(channel=channel, ts=ts, **content)


MESSAGE_METHODS = ["chat.postMessage", "chat.update", "chat.postEphemeral"]


@pytest.mark.parametrize("method", MESSAGE_METHODS)
@pytest.mark.parametrize("limit", list(BLOCK_LIMITS))
def test_block_limits_give_invalid_blocks(client, method, limit):
    fits, too_big = BLOCK_LIMITS[limit]
    assert send(client, method, OPS, text="fallback", blocks=fits)["ok"]
    with pytest.raises(SlackApiError) as info:
        send(client, method, OPS, text="fallback", blocks=too_big)
    assert info.value.response["error"] == "invalid_blocks"
    assert info.value.response["response_metadata"]["messages"]  # Slack says where


@pytest.mark.parametrize("method", MESSAGE_METHODS)
def test_text_limit_and_no_text(sandbox, client, method):
    assert send(client, method, OPS, text="x" * 40_000)["ok"]
    assert error_of(send, client, method, OPS, text="x" * 40_001) == "msg_too_long"
    assert error_of(send, client, method, OPS, text="x" * 40_001, blocks=[section("ok")]) == "msg_too_long"
    assert error_of(send, client, method, OPS, text="") == "no_text"
    assert error_of(send, client, method, OPS) == "no_text"
    assert send(client, method, OPS, blocks=[section("blocks alone will do")])["ok"]


@pytest.mark.parametrize("method", MESSAGE_METHODS)
def test_oversized_blocks_give_msg_blocks_too_long(client, method):
    # valid one by one, too big together (no documented figure: see blockkit.MAX_MESSAGE_BLOCKS_JSON)
    huge = [section("y" * 2999)] * 40
    assert error_of(send, client, method, OPS, text="x", blocks=huge) == "msg_blocks_too_long"


def test_response_url_and_command_answers_follow_the_same_limits(sandbox):
    ws = sandbox.state
    url = ws.mint_response_url(sandbox.base_url, channel=OPS, user=ANA, kind="command")
    for body, error in [
        ({"text": "x" * 40_001}, "msg_too_long"),
        ({"text": "x", "blocks": [header("h" * 151)]}, "invalid_blocks"),
        ({"text": ""}, "no_text"),
    ]:
        refused = httpx.post(url, json=body)
        assert refused.status_code == 400 and refused.json()["error"] == error
    assert httpx.post(url, json={"text": "x" * 40_000}).status_code == 200
    assert ws.response_urls[url.rsplit("/", 1)[-1]].uses == 1  # refusals are not counted


# ---------------------------------------------------------------- views

MODAL = {
    "type": "modal",
    "callback_id": "declare",
    "title": {"type": "plain_text", "text": "Declare an incident"},
    "close": {"type": "plain_text", "text": "Cancel"},
    "blocks": [section("Pick a playbook")],
}

VIEW_LIMITS = {
    "100 blocks": ({"blocks": [{"type": "divider"}] * 100}, {"blocks": [{"type": "divider"}] * 101}),
    "private_metadata 3,000": ({"private_metadata": "m" * 3000}, {"private_metadata": "m" * 3001}),
    "title 24": ({"title": {"type": "plain_text", "text": "t" * 24}},
                 {"title": {"type": "plain_text", "text": "t" * 25}}),
    "section text 3,000": ({"blocks": [section("s" * 3000)]}, {"blocks": [section("s" * 3001)]}),
}


def show_view(sandbox, client, method: str, view: dict):
    ws = sandbox.state
    if method == "views.open":
        return client.views_open(trigger_id=ws.mint_trigger(ANA), view=view)
    if method == "views.push":
        if not ws.open_views(ANA):
            client.views_open(trigger_id=ws.mint_trigger(ANA), view=MODAL)
        return client.views_push(trigger_id=ws.mint_trigger(ANA), view=view)
    opened = client.views_open(trigger_id=ws.mint_trigger(ANA), view=MODAL)["view"]
    return client.views_update(view_id=opened["id"], view=view)


@pytest.mark.parametrize("method", ["views.open", "views.push", "views.update"])
@pytest.mark.parametrize("limit", list(VIEW_LIMITS))
def test_view_limits_give_invalid_arguments(sandbox, client, method, limit):
    fits, too_big = VIEW_LIMITS[limit]
    assert show_view(sandbox, client, method, {**MODAL, **fits})["ok"]
    with pytest.raises(SlackApiError) as info:
        show_view(sandbox, client, method, {**MODAL, **too_big})
    assert info.value.response["error"] == "invalid_arguments"
    assert info.value.response["response_metadata"]["messages"]


def test_modals_are_modals(sandbox, client):
    home = {"type": "home", "blocks": [section("hi")]}
    assert error_of(show_view, sandbox, client, "views.open", home) == "invalid_arguments"


def test_views_publish_home_tab(sandbox, client):
    home = {"type": "home", "callback_id": "home", "blocks": [section("Open incidents: 0")]}
    first = client.views_publish(user_id=ANA, view=home)["view"]
    assert first["type"] == "home" and first["hash"]
    again = client.views_publish(user_id=ANA, view={**home, "blocks": [section("Open incidents: 1")]})["view"]
    assert again["id"] == first["id"] and again["hash"] != first["hash"]
    assert sandbox.state.view(first["id"]).blocks[0]["text"]["text"] == "Open incidents: 1"
    assert error_of(client.views_publish, user_id=ANA, view=home, hash=first["hash"]) == "hash_conflict"
    assert error_of(client.views_publish, user_id="U0NOBODY", view=home) == "invalid_arguments"
    assert error_of(client.views_publish, user_id=ANA, view=MODAL) == "invalid_arguments"
    too_many = {**home, "blocks": [{"type": "divider"}] * 101}
    assert error_of(client.views_publish, user_id=ANA, view=too_many) == "invalid_arguments"
    # each block valid, the whole over 250 kB
    too_large = {**home, "blocks": [section("z" * 3000)] * 100}
    assert error_of(client.views_publish, user_id=ANA, view=too_large) == "view_too_large"
    assert sandbox.state.open_views(ANA) == []  # a Home tab is not a modal


# ---------------------------------------------------------------- conversations


@pytest.mark.parametrize("field", ["topic", "purpose"])
def test_topic_and_purpose_at_most_250(client, field):
    cid = client.conversations_create(name="inc-1-csam-report", is_private=True)["channel"]["id"]
    call = client.conversations_setTopic if field == "topic" else client.conversations_setPurpose
    assert call(channel=cid, **{field: "é" * 250})["ok"]
    assert error_of(call, channel=cid, **{field: "é" * 251}) == "too_long"
    info = client.conversations_info(channel=cid)["channel"]
    assert info[field]["value"] == "é" * 250  # the refused one changed nothing


def test_history_carries_metadata_only_when_asked(client):
    meta = {"event_type": "safeguard_checklist", "event_payload": {"incident": 7}}
    posted = client.chat_postMessage(channel=OPS, text="checklist", metadata=meta)
    client.chat_postMessage(channel=OPS, text="reply", thread_ts=posted["ts"], metadata=meta)
    plain = client.conversations_history(channel=OPS, limit=5)["messages"]
    assert all("metadata" not in m for m in plain)
    asked = client.conversations_history(channel=OPS, limit=5, include_all_metadata=True)["messages"]
    assert next(m for m in asked if m["ts"] == posted["ts"])["metadata"] == meta
    replies = client.conversations_replies(channel=OPS, ts=posted["ts"])["messages"]
    assert all("metadata" not in m for m in replies)
    replies = client.conversations_replies(channel=OPS, ts=posted["ts"], include_all_metadata=True)["messages"]
    assert [m["metadata"] for m in replies] == [meta, meta]


# ---------------------------------------------------------------- outages


def auth_test(sandbox) -> httpx.Response:
    return httpx.post(sandbox.api_url + "auth.test", headers={"Authorization": f"Bearer {sandbox.bot_token}"})


def test_auth_test_outage_for_n_calls(sandbox, client):
    sandbox.faults.outage("auth.test", count=3)
    for _ in range(3):
        down = auth_test(sandbox)
        assert down.status_code == 503 and down.json() == {"ok": False, "error": "service_unavailable"}
        assert client.users_info(user=ANA)["ok"]  # only auth.test is down
    assert auth_test(sandbox).json()["user_id"] == BOT
    assert [c.http_status for c in sandbox.calls_of("auth.test")] == [503, 503, 503, 200]


def test_auth_test_outage_for_a_time_window(sandbox, client, clock):
    sandbox.faults.outage("auth.test", seconds=30, status=429)
    for _ in range(5):
        limited = auth_test(sandbox)
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "30"
        assert limited.json() == {"ok": False, "error": "ratelimited"}
        clock.advance(5)
    assert error_of(client.auth_test) == "ratelimited"  # a client without retries gives up
    clock.advance(5)  # 30 s after the outage began
    assert auth_test(sandbox).status_code == 200
    assert sandbox.faults.to_list() == []


def test_outage_over_the_http_fault_api(sandbox, clock):
    spec = {"kind": "error", "status": 503, "method": "auth.test", "seconds": 10}
    assert httpx.post(sandbox.base_url + "_sandbox/faults", json=spec).json()["ok"]
    assert [auth_test(sandbox).status_code for _ in range(4)] == [503] * 4  # every call in the window
    clock.advance(10)
    assert auth_test(sandbox).status_code == 200
    assert httpx.get(sandbox.base_url + "_sandbox/faults").json()["faults"] == []
