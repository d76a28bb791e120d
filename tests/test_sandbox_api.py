"""The sandbox Web API, driven by the real slack_sdk WebClient over HTTP."""

from __future__ import annotations

import time

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

from sandbox.clock import ManualClock
from sandbox.server import Sandbox

ANA, BEN, CHLOE, OSCAR, BOT = "U0LEAD001", "U0DEPU001", "U0SPEC001", "U0OUTSID1", "U0BOT0001"
OPS = "C0OPS0001"


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def sandbox(clock):
    with Sandbox(port=0, clock=clock) as sb:
        yield sb


def make_client(sb: Sandbox, token: str | None = None) -> WebClient:
    return WebClient(
        base_url=sb.api_url,
        token=token or sb.bot_token,
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=2),
            ServerErrorRetryHandler(
                max_retry_count=2, interval_calculator=FixedValueRetryIntervalCalculator(0.01)
            ),
        ],
    )


@pytest.fixture
def client(sandbox):
    return make_client(sandbox)


def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(SlackApiError) as info:
        fn(*args, **kwargs)
    return info.value.response["error"]


def new_channel(client, name="inc-1-csam-report", private=True) -> str:
    return client.conversations_create(name=name, is_private=private)["channel"]["id"]


# ---------------------------------------------------------------- wire and auth


def test_urls_and_auth(sandbox, client):
    assert sandbox.api_url == sandbox.base_url + "api/" and sandbox.api_url.endswith("/")
    auth = client.auth_test()
    assert (auth["team_id"], auth["user_id"], auth["bot_id"]) == ("T0SANDBOX", BOT, "B0BOT0001")
    assert error_of(make_client(sandbox, "xoxb-wrong").auth_test) == "invalid_auth"
    raw = httpx.post(sandbox.api_url + "auth.test")
    assert raw.status_code == 200 and raw.json() == {"ok": False, "error": "not_authed"}
    assert error_of(client.api_call, "nope.nothing") == "unknown_method"
    # the token may also come as a form field; GET with a query string works too
    assert httpx.post(sandbox.api_url + "auth.test", data={"token": sandbox.bot_token}).json()["ok"]
    got = httpx.get(sandbox.api_url + "users.info", params={"token": sandbox.bot_token, "user": ANA})
    assert got.json()["user"]["name"] == "ana"


# ---------------------------------------------------------------- conversations


@pytest.mark.parametrize(
    "name, error",
    [
        ("", "invalid_name_required"),
        ("Inc-1", "invalid_name_specials"),
        ("inc 1", "invalid_name_specials"),
        ("inc#1", "invalid_name_specials"),
        ("x" * 81, "invalid_name_maxlength"),
        ("--", "invalid_name_punctuation"),
        ("general", "name_taken"),
    ],
)
def test_channel_name_rules(client, name, error):
    assert error_of(client.conversations_create, name=name) == error


def test_create_channel_shape_and_archived_names_stay_taken(sandbox, client):
    channel = client.conversations_create(name="inc-7_csam-report", is_private=True)["channel"]
    assert channel["id"].startswith("C0") and channel["name"] == "inc-7_csam-report"
    assert channel["is_private"] and channel["is_channel"] and not channel["is_archived"]
    assert channel["creator"] == BOT and isinstance(channel["created"], int)
    assert set(channel["topic"]) == {"value", "creator", "last_set"} and "purpose" in channel
    assert sandbox.state.members(channel["id"]) == [BOT]
    assert client.conversations_create(name="x" * 80)["ok"]
    client.conversations_archive(channel=channel["id"])
    assert error_of(client.conversations_archive, channel=channel["id"]) == "already_archived"
    assert error_of(client.conversations_create, name="inc-7_csam-report") == "name_taken"
    assert error_of(client.chat_postMessage, channel=channel["id"], text="x") == "is_archived"
    assert error_of(client.conversations_archive, channel="C0GENERAL") == "cant_archive_general"


def test_private_channels_the_bot_is_not_in_do_not_exist_for_it(sandbox, client):
    ws = sandbox.state
    secret = ws.add_channel("legal-private", is_private=True, members=[ANA]).id
    lounge = ws.add_channel("lounge", members=[ANA, BEN]).id
    assert error_of(client.chat_postMessage, channel=secret, text="x") == "channel_not_found"
    assert error_of(client.conversations_info, channel=secret) == "channel_not_found"
    assert error_of(client.conversations_invite, channel=secret, users=BEN) == "channel_not_found"
    # a public channel it is not in: visible, but it cannot act there
    assert client.conversations_info(channel=lounge)["channel"]["is_member"] is False
    assert error_of(client.chat_postMessage, channel=lounge, text="x") == "not_in_channel"
    assert error_of(client.conversations_invite, channel=lounge, users=BEN) == "not_in_channel"
    assert error_of(client.pins_add, channel=lounge, timestamp="1.000001") == "not_in_channel"
    assert error_of(client.conversations_join, channel=lounge) == "missing_scope"
    listed = {c["id"] for c in client.conversations_list(types="public_channel,private_channel")["channels"]}
    assert lounge in listed and OPS in listed and secret not in listed
    # the bot's own private channel, until someone removes it
    mine = new_channel(client)
    assert mine in {c["id"] for c in client.conversations_list(types="private_channel")["channels"]}
    ws.remove_member(mine, BOT)
    assert error_of(client.chat_postMessage, channel=mine, text="x") == "channel_not_found"


def test_invite_rules(sandbox, client):
    cid = new_channel(client)
    assert error_of(client.conversations_invite, channel=cid, users="") == "no_user"
    assert error_of(client.conversations_invite, channel="C0MISSING", users=ANA) == "channel_not_found"
    ok = client.conversations_invite(channel=cid, users=f"{ANA},{CHLOE}")
    assert ok["channel"]["id"] == cid and sandbox.state.members(cid) == [BOT, ANA, CHLOE]

    with pytest.raises(SlackApiError) as info:
        client.conversations_invite(channel=cid, users=f"{ANA},{BEN}")
    body = info.value.response
    assert body["error"] == "already_in_channel"
    assert body["errors"] == [{"user": ANA, "ok": False, "error": "already_in_channel"}]
    assert BEN not in sandbox.state.members(cid)  # nobody invited when one fails

    forced = client.conversations_invite(channel=cid, users=f"{ANA},{BEN},U0NOBODY", force=True)
    assert forced["ok"] and BEN in sandbox.state.members(cid)
    assert {e["error"] for e in forced["errors"]} == {"already_in_channel", "user_not_found"}

    assert error_of(client.conversations_invite, channel=cid, users="U0NOBODY") == "user_not_found"
    assert error_of(client.conversations_invite, channel=cid, users=BOT) == "cant_invite_self"
    client.conversations_archive(channel=cid)
    assert error_of(client.conversations_invite, channel=cid, users=OSCAR) == "is_archived"


def test_topic_purpose_members_history(sandbox, client):
    cid = new_channel(client)
    assert error_of(client.conversations_setTopic, channel=cid, topic="x" * 251) == "too_long"
    assert client.conversations_setTopic(channel=cid, topic="SEV1 · INC-1")["channel"]["topic"]["value"] == "SEV1 · INC-1"
    client.conversations_setPurpose(channel=cid, purpose="p" * 250)
    info = client.conversations_info(channel=cid, include_num_members=True)["channel"]
    assert info["topic"]["creator"] == BOT and info["purpose"]["value"] == "p" * 250
    assert info["num_members"] == 1
    lounge = sandbox.state.add_channel("lounge", members=[ANA]).id
    assert error_of(client.conversations_setTopic, channel=lounge, topic="x") == "not_in_channel"
    assert client.conversations_members(channel=OPS)["members"][-1] == BOT

    first = client.chat_postMessage(channel=cid, text="one", metadata={"event_type": "incident", "event_payload": {"id": 1}})
    second = client.chat_postMessage(channel=cid, text="two")
    history = client.conversations_history(channel=cid, limit=2)
    assert [m["ts"] for m in history["messages"]] == [second["ts"], first["ts"]]  # newest first
    assert "metadata" not in history["messages"][1]
    assert history["has_more"] and history["response_metadata"]["next_cursor"]
    with_meta = client.conversations_history(channel=cid, include_all_metadata=True, oldest=first["ts"], inclusive=True)
    texts = [m.get("text") for m in with_meta["messages"]]
    assert texts == ["two", "one"]
    assert with_meta["messages"][1]["metadata"] == {"event_type": "incident", "event_payload": {"id": 1}}


def test_conversations_open_gives_one_dm_per_user(sandbox, client):
    dm = client.conversations_open(users=ANA)["channel"]["id"]
    assert dm.startswith("D") and client.conversations_open(users=ANA)["channel"]["id"] == dm
    posted = client.chat_postMessage(channel=ANA, text="You were paged")  # a user id posts to the DM
    assert posted["channel"] == dm
    assert [m.text for m in sandbox.state.dms(ANA)] == ["You were paged"]
    assert error_of(client.conversations_open, users="U0NOBODY") == "user_not_found"


# ---------------------------------------------------------------- chat


def test_post_message_records_every_argument(sandbox, client):
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*INC-1* declared"}}]
    posted = client.chat_postMessage(
        channel=OPS, text="INC-1 declared", blocks=blocks, unfurl_links=False, unfurl_media=False,
        metadata={"event_type": "safeguard_incident", "event_payload": {"incident": 1}},
    )
    message = sandbox.state.last_message(OPS)
    assert message.ts == posted["ts"] and posted["channel"] == OPS
    assert message.unfurl_links is False and message.unfurl_media is False
    assert message.args["unfurl_links"] in ("0", False, "false")
    assert message.blocks[0]["text"]["text"] == "*INC-1* declared" and message.blocks[0]["block_id"]
    assert message.metadata["event_payload"] == {"incident": 1}
    assert message.user == BOT and message.bot_id == "B0BOT0001"
    assert posted["message"]["bot_id"] == "B0BOT0001"
    # ts look like Slack's and strictly increase, even on a frozen clock
    more = [client.chat_postMessage(channel=OPS, text=str(i))["ts"] for i in range(3)]
    assert all(len(ts.split(".")[1]) == 6 for ts in more)
    assert [float(t) for t in [posted["ts"], *more]] == sorted({float(t) for t in [posted["ts"], *more]})
    thread = client.chat_postMessage(channel=OPS, text="reply", thread_ts=posted["ts"])
    assert sandbox.state.message(OPS, thread["ts"]).thread_ts == posted["ts"]


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_post_message_errors(sandbox, client):
    assert error_of(client.chat_postMessage, channel=OPS) == "no_text"
    assert error_of(client.chat_postMessage, channel="C0NOPE", text="x") == "channel_not_found"
    too_many = [{"type": "divider"}] * 51
    assert error_of(client.chat_postMessage, channel=OPS, text="x", blocks=too_many) == "invalid_blocks"
    assert client.chat_postMessage(channel=OPS, text="x", blocks=too_many[:50])["ok"]
    bad = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel=OPS, blocks=bad, text="x")
    assert info.value.response["error"] == "invalid_blocks"
    assert info.value.response["response_metadata"]["messages"]
    huge = [{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 2999}}] * 40
    assert error_of(client.chat_postMessage, channel=OPS, blocks=huge, text="x") == "msg_blocks_too_long"


def test_update_delete_ephemeral_permalink(sandbox, client):
    posted = client.chat_postMessage(channel=OPS, text="checklist")
    updated = client.chat_update(channel=OPS, ts=posted["ts"], text="checklist v2", blocks=[{"type": "divider"}])
    assert updated["ts"] == posted["ts"]
    message = sandbox.state.message(OPS, posted["ts"])
    assert message.text == "checklist v2" and message.edited and message.updates[0]["text"] == "checklist v2"
    assert error_of(client.chat_update, channel=OPS, ts="1.000001", text="x") == "message_not_found"
    human = sandbox.driver.post_as(ANA, OPS, "hello").message
    assert error_of(client.chat_update, channel=OPS, ts=human.ts, text="x") == "cant_update_message"
    assert error_of(client.chat_delete, channel=OPS, ts=human.ts) == "cant_delete_message"

    eph = client.chat_postEphemeral(channel=OPS, user=ANA, text="only you")
    assert [m.text for m in sandbox.state.ephemeral(OPS, ANA)] == ["only you"]
    assert sandbox.state.ephemeral(OPS, ANA)[0].ts == eph["message_ts"]
    assert error_of(client.chat_postEphemeral, channel=OPS, user=OSCAR, text="x") == "user_not_in_channel"

    link = client.chat_getPermalink(channel=OPS, message_ts=posted["ts"])["permalink"]
    assert link.startswith(sandbox.base_url + "archives/" + OPS + "/p")
    followed = httpx.get(link, follow_redirects=True)
    assert followed.status_code == 200 and "Safeguard sandbox" in followed.text
    assert error_of(client.chat_getPermalink, channel=OPS, message_ts="1.000001") == "message_not_found"

    client.chat_delete(channel=OPS, ts=posted["ts"])
    assert sandbox.state.message(OPS, posted["ts"]) is None


def test_pins(sandbox, client):
    posted = client.chat_postMessage(channel=OPS, text="pin me")
    assert client.pins_add(channel=OPS, timestamp=posted["ts"])["ok"]
    assert sandbox.state.pins(OPS) == [posted["ts"]]
    assert error_of(client.pins_add, channel=OPS, timestamp=posted["ts"]) == "already_pinned"
    assert error_of(client.pins_add, channel=OPS, timestamp="1.000001") == "message_not_found"
    assert client.pins_list(channel=OPS)["items"][0]["message"]["ts"] == posted["ts"]


# ---------------------------------------------------------------- views


MODAL = {
    "type": "modal",
    "callback_id": "declare",
    "title": {"type": "plain_text", "text": "Declare"},
    "submit": {"type": "plain_text", "text": "Declare"},
    "private_metadata": "C0OPS0001",
    "blocks": [
        {
            "type": "input",
            "block_id": "summary",
            "label": {"type": "plain_text", "text": "Summary"},
            "element": {"type": "plain_text_input", "action_id": "value"},
        }
    ],
}


def test_trigger_ids_expire_and_are_single_use(sandbox, client, clock):
    ws = sandbox.state
    trigger = ws.mint_trigger(ANA)
    view = client.views_open(trigger_id=trigger, view=MODAL)["view"]
    assert view["id"].startswith("V") and view["hash"] and view["callback_id"] == "declare"
    assert view["private_metadata"] == "C0OPS0001" and view["state"] == {"values": {}}
    assert [v.id for v in ws.open_views(ANA)] == [view["id"]]
    assert error_of(client.views_open, trigger_id=trigger, view=MODAL) == "exchanged_trigger_id"
    late = ws.mint_trigger(ANA)
    clock.advance(3.5)
    assert error_of(client.views_open, trigger_id=late, view=MODAL) == "expired_trigger_id"
    assert error_of(client.views_open, trigger_id="123.456.abc", view=MODAL) == "invalid_trigger_id"
    fresh = ws.mint_trigger(ANA)
    clock.advance(2.9)
    pushed = client.views_push(trigger_id=fresh, view={**MODAL, "callback_id": "second"})["view"]
    assert pushed["previous_view_id"] == view["id"] and len(ws.open_views(ANA)) == 2
    bad_title = {**MODAL, "title": {"type": "plain_text", "text": "x" * 25}}
    assert error_of(client.views_open, trigger_id=ws.mint_trigger(ANA), view=bad_title) == "invalid_arguments"


def test_views_update_hash_and_external_id(sandbox, client):
    opened = client.views_open(trigger_id=sandbox.state.mint_trigger(ANA), view={**MODAL, "external_id": "decl-1"})["view"]
    updated = client.views_update(view_id=opened["id"], hash=opened["hash"], view={**MODAL, "external_id": "decl-1", "callback_id": "v2"})["view"]
    assert updated["id"] == opened["id"] and updated["hash"] != opened["hash"]
    assert error_of(client.views_update, view_id=opened["id"], hash=opened["hash"], view=MODAL) == "hash_conflict"
    by_external = client.views_update(external_id="decl-1", view={**MODAL, "external_id": "decl-1", "callback_id": "v3"})
    assert by_external["view"]["callback_id"] == "v3"
    assert error_of(client.views_update, view_id="V0NOPE", view=MODAL) == "not_found"


# ---------------------------------------------------------------- users, groups, bookmarks


def test_users_usergroups_bookmarks(client):
    user = client.users_info(user="U0SPEC002")["user"]
    assert user["tz"] == "Asia/Kolkata" and user["tz_offset"] == 19800 and user["tz_label"] == "India Standard Time"
    assert user["profile"]["email"] == "dev@example.org" and user["profile"]["real_name"] == "Dev Specialist"
    assert error_of(client.users_info, user="U0NOBODY") == "user_not_found"
    assert len(client.users_list()["members"]) == 12
    assert client.usergroups_users_list(usergroup="S0LEADS")["users"] == [ANA, BEN]
    assert error_of(client.usergroups_users_list, usergroup="S0NOPE") == "no_such_subteam"
    assert client.users_lookupByEmail(email="lena@example.org")["user"]["id"] == "U0LEGAL01"
    added = client.bookmarks_add(channel_id=OPS, title="Timeline", type="link", link="https://example.org/t/1")
    assert added["bookmark"]["link"] == "https://example.org/t/1"
    assert error_of(client.bookmarks_add, channel_id=OPS, title="x", type="link", link="javascript:alert(1)") == "invalid_link"


# ---------------------------------------------------------------- files


def test_files_upload_v2_round_trip(sandbox, client):
    cid = new_channel(client)
    response = client.files_upload_v2(
        channel=cid, content="# INC-1 review\n", filename="inc-1-review.md", title="INC-1 review",
        initial_comment="Post-incident review",
    )
    file = sandbox.state.file(response["file"]["id"])
    assert file.data == b"# INC-1 review\n" and file.name == "inc-1-review.md"
    assert file.title == "INC-1 review" and file.channels == [cid]
    message = sandbox.state.last_message(cid)
    assert message.files[0]["id"] == file.id and message.text == "Post-incident review"
    assert client.files_info(file=file.id)["file"]["title"] == "INC-1 review"
    lounge = sandbox.state.add_channel("lounge", members=[ANA]).id
    assert error_of(client.files_upload_v2, channel=lounge, content="x", filename="x.txt") == "not_in_channel"


# ---------------------------------------------------------------- faults


def test_rate_limit_is_retried_by_the_sdk(sandbox, client):
    sandbox.faults.rate_limit("chat.postMessage", count=1, retry_after=0)
    assert client.chat_postMessage(channel=OPS, text="after a 429")["ok"]
    statuses = [c.http_status for c in sandbox.state.calls_of("chat.postMessage")]
    assert statuses == [429, 200]
    assert [m.text for m in sandbox.state.messages(OPS)].count("after a 429") == 1
    sandbox.faults.rate_limit(count=1, retry_after=7)
    raw = httpx.post(sandbox.api_url + "auth.test", headers={"Authorization": f"Bearer {sandbox.bot_token}"})
    assert raw.status_code == 429 and raw.headers["Retry-After"] == "7"
    assert raw.json() == {"ok": False, "error": "ratelimited"}


def test_server_errors_change_nothing_and_are_retried(sandbox, client):
    sandbox.faults.server_error("conversations.create", count=2, status=503)
    assert client.conversations_create(name="inc-9-x")["ok"]
    assert [c.http_status for c in sandbox.state.calls_of("conversations.create")] == [503, 503, 200]
    sandbox.faults.server_error("chat.postMessage", count=5, status=500)
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel=OPS, text="lost")
    assert "lost" not in [m.text for m in sandbox.state.messages(OPS)]
    sandbox.faults.clear()
    assert client.chat_postMessage(channel=OPS, text="back")["ok"]


def test_latency_and_http_fault_api(sandbox, client):
    sandbox.faults.latency(150, method="auth.test")
    started = time.monotonic()
    client.auth_test()
    assert time.monotonic() - started >= 0.15
    client.users_info(user=ANA)  # other methods are not delayed
    got = httpx.post(sandbox.base_url + "_sandbox/faults", json={"kind": "ratelimit", "method": "users.info", "count": 1, "retry_after": 3})
    assert got.json()["ok"] and len(got.json()["faults"]) == 2
    assert httpx.get(sandbox.api_url + "users.info", params={"token": sandbox.bot_token, "user": ANA}).status_code == 429
    assert httpx.delete(sandbox.base_url + "_sandbox/faults").json()["faults"] == []
    bad = httpx.post(sandbox.base_url + "_sandbox/faults", json={"kind": "error", "status": 404})
    assert bad.status_code == 400


# ---------------------------------------------------------------- response_url


def test_response_url_limits_and_shapes(sandbox, clock):
    ws = sandbox.state
    url = ws.mint_response_url(sandbox.base_url, channel=OPS, user=ANA, kind="command")
    first = httpx.post(url, json={"text": "only ana sees this"})
    assert first.status_code == 200
    assert [m.text for m in ws.ephemeral(OPS, ANA)] == ["only ana sees this"]
    httpx.post(url, json={"text": "everyone sees this", "response_type": "in_channel"})
    assert ws.last_message(OPS).text == "everyone sees this" and ws.last_message(OPS).source == "response_url"
    httpx.post(url, json={"text": "replaced", "replace_original": True})
    assert [m.text for m in ws.ephemeral(OPS, ANA)] == ["replaced"]
    assert httpx.post(url, json={}).status_code == 400  # no text: not counted
    httpx.post(url, json={"text": "4"})
    assert httpx.post(url, json={"text": "5"}).status_code == 200
    sixth = httpx.post(url, json={"text": "6"})
    assert sixth.status_code == 404 and sixth.json()["error"] == "used_url"

    later = ws.mint_response_url(sandbox.base_url, channel=OPS, user=ANA, kind="command")
    clock.advance(30 * 60 + 1)
    assert httpx.post(later, json={"text": "late"}).json()["error"] == "expired_url"


def test_response_url_of_a_button_replaces_or_deletes_the_message(sandbox, client):
    ws = sandbox.state
    posted = client.chat_postMessage(channel=OPS, text="step 1", blocks=[{"type": "divider"}])
    url = ws.mint_response_url(sandbox.base_url, channel=OPS, user=ANA, kind="block_actions", message_ts=posted["ts"])
    httpx.post(url, json={"replace_original": True, "text": "step 1 done"})
    assert ws.message(OPS, posted["ts"]).text == "step 1 done"
    httpx.post(url, json={"delete_original": True})
    assert ws.message(OPS, posted["ts"]) is None


def test_apps_connections_open_takes_only_the_app_token(sandbox):
    with pytest.raises(SlackApiError) as bot_token:
        make_client(sandbox).apps_connections_open(app_token=sandbox.bot_token)
    assert bot_token.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as app_token:
        make_client(sandbox, token=sandbox.app_token).chat_postMessage(channel=OPS, text="hi")
    assert app_token.value.response["error"] == "not_allowed_token_type"

    url = make_client(sandbox).apps_connections_open(app_token=sandbox.app_token)["url"]
    assert url.startswith("ws://127.0.0.1:") and "ticket=" in url
    from websockets.sync.client import connect

    with connect(url) as socket:  # the hello, then nothing until the driver sends an envelope
        assert '"type": "hello"' in socket.recv(timeout=5)
    with pytest.raises(Exception, match="401"):  # a ticket opens one connection
        connect(url, open_timeout=5)
