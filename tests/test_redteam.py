"""Red team: trying to do what someone should not be able to do, and to make the bot crash.

Passing tests guard attacks that are refused today. Tests marked `xfail(strict=True)` show a
real bug: they assert what should happen and fail until it is fixed.

The incidents are the demo organisation's: csam-report (restricted; `confirm` is for the
specialists alone) and le-emergency-request (no legal clock, so its Close confirmation has no
input), declared by the organisation's lead Ana (U0LEAD001)."""

from __future__ import annotations

import copy
import json
import logging
import re

import pytest

from sandbox import payloads
from sandbox.blockkit import find_element
from tests.policy_support import (
    COMMS,
    CONFIRM,
    DEPUTY,
    GENERAL,
    LEAD,
    LEGAL,
    OPS,
    OUTSIDER,
    SPEC,
    checklist,
    click,
    declare,
    events,
    forged_command,
    open_view,
    refused,
    say,
)
from tests.support import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["sqlite"])
def db_url(request, tmp_path):
    """The policy is the core's, whatever the database: these attacks run on SQLite (the policy
    tests in test_policy*.py and the NUL test below run on PostgreSQL too)."""
    yield f"sqlite:///{tmp_path / 'safeguard.db'}"

LERESP = "U0LERESP1"
# A live broadcast, a user-group mention, a link or a date token typed by a user.
LIVE = re.compile(r"<!(?:channel|here|everyone|subteam\^)|<https?:|<mailto:", re.IGNORECASE)
HOSTILE = "<!channel> <!here> <!subteam^S0LEGAL|legal> <https://evil.example/x|click me>"


def declare_le(running, number: int, user: str = LEAD):
    """le-emergency-request (private, not restricted, no `law:` clock) as `user` from ops."""
    result = running.driver.command(user, "declare le-emergency-request Police emergency request 55", channel=OPS)
    assert result.ok, result
    channel = running.provisioned(number)
    wait_for(lambda: running.ws.pins(channel.id), what=f"INC-{number}'s pinned checklist")
    running.settle()
    return channel


def texts_of(message) -> str:
    """Everything a message shows: its text and every text in its blocks."""
    return message.text + " " + json.dumps(message.blocks or [], ensure_ascii=False)


def unexpected_errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.ERROR and ("unexpected" in r.getMessage() or r.exc_info)]


# -- acting after removal, with a modal left open ------------------------------------------------

def test_a_specialist_removed_with_the_step_form_open_cannot_submit_it(running):
    channel = declare(running, 1)
    click(running, SPEC, channel, "step_done", "confirm")
    view = open_view(running, SPEC, "step_fields")
    assert running.driver.leave(SPEC, channel.id).ok
    wait_for(lambda: "member_left" in running.kinds(1), what="the bot to hear the departure")
    running.settle()
    before = len(running.timeline(1))
    result = running.driver.submit_view(SPEC, view.id, {
        "case_id": {"value": "CASE-1"}, "category": {"value": "A1"}, "human_viewed": {"value": "all"}})
    assert result.ok and result.errors, result
    assert any("Only members of INC-1's channel" in e for e in result.errors.values()), result.errors
    running.settle()
    assert len(running.timeline(1)) == before and "step_done" not in running.kinds(1)


def test_a_removed_member_whose_departure_event_was_lost_is_refused_within_a_minute(running, monkeypatch):
    """However many incidents are open: Slack's word that someone is in the channel holds a
    minute (bot.policy.MEMBERSHIP_TTL), then the policy asks again before letting them act."""
    from bot import policy

    channel = declare(running, 1)
    click(running, SPEC, channel, "step_done", "confirm")
    view = open_view(running, SPEC, "step_fields")
    with running.ws.lock:  # removed in Slack, the event lost
        running.ws.channel(channel.id).members.remove(SPEC)
    monkeypatch.setattr(policy, "MEMBERSHIP_TTL", 0.0)  # the minute has passed
    running.driver.submit_view(SPEC, view.id, {
        "case_id": {"value": "CASE-1"}, "category": {"value": "A1"}, "human_viewed": {"value": "all"}})
    running.settle()
    assert "step_done" not in running.kinds(1)


def test_a_removed_member_whose_departure_event_was_lost_is_refused_after_the_check(running):
    """Once the background membership check has run, the open form is refused."""
    from bot.incidents.people import reconcile

    channel = declare(running, 1)
    click(running, SPEC, channel, "step_done", "confirm")
    view = open_view(running, SPEC, "step_fields")
    with running.ws.lock:  # removed in Slack, the event lost
        running.ws.channel(channel.id).members.remove(SPEC)
    reconcile(running.core)
    assert "member_left" in running.kinds(1)
    before = len(running.timeline(1))
    result = running.driver.submit_view(SPEC, view.id, {
        "case_id": {"value": "CASE-1"}, "category": {"value": "A1"}, "human_viewed": {"value": "all"}})
    assert result.ok and result.errors, result
    running.settle()
    assert "step_done" not in running.kinds(1) and len(running.timeline(1)) == before


def test_a_refused_close_confirmation_is_told_at_a_block_of_the_modal(running):
    channel = declare_le(running, 1)
    assert "is now" in say(running, LEAD, f"assign incident_lead <@{LEGAL}>", channel.id)
    running.settle()
    click(running, LEGAL, channel, "incident_close")
    view = open_view(running, LEGAL, "incident_close")
    inputs = {b.get("block_id") for b in view.blocks if b.get("type") == "input"}
    assert not inputs  # no legal step open: a plain confirmation
    assert running.driver.leave(LEGAL, channel.id).ok
    wait_for(lambda: "member_left" in running.kinds(1), what="the bot to hear the departure")
    running.settle()
    result = running.driver.submit_view(LEGAL, view.id, {})
    running.settle()
    assert "closed" not in running.kinds(1)  # the refusal itself holds
    # ... but the answer must reach the person: an error at a block the view has, or a message
    told = [m.text for m in running.ws.ephemeral_for(LEGAL) + running.ws.dms(LEGAL) if "INC-1" in m.text
            and m.text.startswith(":no_entry:")]
    shown = result.view is not None and ":no_entry:" in str(result.view.blocks)  # the modal now says it
    assert told or shown or (result.errors and set(result.errors) <= inputs), (result.errors, inputs)


# -- forged payloads -------------------------------------------------------------------------

def test_a_view_whose_metadata_names_another_incident_is_refused(running):
    """A form opened in INC-2 (where the person belongs) submitted as if for INC-1 (where they do
    not): the core checks the person against the incident the form names."""
    declare(running, 1)
    second = declare_le(running, 2)
    assert LERESP in running.ws.members(second.id)
    click(running, LERESP, second, "step_skip", "verify")
    view = open_view(running, LERESP, "step_skip")
    with running.ws.lock:
        view.private_metadata = json.dumps({"incident": 1, "step": "confirm"})
    before = {n: len(running.timeline(n)) for n in (1, 2)}
    result = running.driver.submit_view(LERESP, view.id, {"reason": {"value": "Not needed"}})
    assert result.ok and result.errors, result
    assert any("Only members of INC-1's channel" in e for e in result.errors.values()), result.errors
    running.settle()
    assert {n: len(running.timeline(n)) for n in (1, 2)} == before


@pytest.mark.parametrize("metadata", [
    {"incident": 1, "step": ["confirm"]},
    {"incident": 10**9, "step": "confirm"},
    {"incident": 0, "step": "confirm"},
    {"incident": 999_999_999, "step": "confirm"},
    {"incident": 1, "step": "x" * 5000},
    [1, 2],
])
def test_odd_view_metadata_is_answered_without_a_crash(running, caplog, metadata):
    channel = declare(running, 1)
    click(running, SPEC, channel, "step_skip", "confirm")
    view = open_view(running, SPEC, "step_skip")
    with running.ws.lock:
        view.private_metadata = json.dumps(metadata)
    result = running.driver.submit_view(SPEC, view.id, {"reason": {"value": "Duplicate"}})
    assert result.ok and result.errors, result
    running.settle()
    assert "step_skipped" not in running.kinds(1)
    assert not unexpected_errors(caplog)


def test_an_outsiders_forged_pin_reaction_adds_nothing(running):
    channel = declare(running, 1)
    message = checklist(running, channel)
    before = len(running.timeline(1))
    result = running.driver.event({"type": "reaction_added", "user": OUTSIDER, "reaction": "pushpin",
                                   "item": {"type": "message", "channel": channel.id, "ts": message.ts},
                                   "item_user": running.ws.bot_user_id, "event_ts": running.ws.next_ts()})
    assert result.ok, result
    running.settle()
    assert len(running.timeline(1)) == before and "note" not in running.kinds(1)


def test_an_outsiders_forged_add_to_timeline_shortcut_adds_nothing(running):
    channel = declare(running, 1)
    message = checklist(running, channel)
    ws = running.ws
    with ws.lock:
        payload = payloads.message_action(
            ws, user=OUTSIDER, channel=ws.channel(channel.id), message=message, callback_id="add_to_timeline",
            trigger_id=ws.mint_trigger(OUTSIDER),
            response_url=ws.mint_response_url(running.sandbox.base_url, channel=channel.id, user=OUTSIDER,
                                              kind="message_action"))
    before = len(running.timeline(1))
    assert running.driver.send_interaction(payload).ok
    running.settle()
    assert len(running.timeline(1)) == before
    wait_for(lambda: [m for m in ws.ephemeral(channel.id, OUTSIDER) if m.text.startswith(":no_entry:")],
             what="the refusal")


# -- leads and `who:` ----------------------------------------------------------------------------

def test_a_lead_cannot_work_a_specialists_step_from_anywhere(running):
    channel = declare(running, 1)
    for text in ("skip INC-1 confirm Not needed", "done INC-1 confirm case_id=C-1 category=A1 human_viewed=all"):
        refused(running, LEAD, text, OPS, "Child-safety specialist")
    refused(running, LEAD, "skip confirm Not needed", channel.id, "Child-safety specialist")
    refused(running, DEPUTY, "skip confirm Not needed", channel.id, "Child-safety specialist")
    # nor its Skip… form
    seen = len(running.ws.ephemeral(channel.id, LEAD))
    click(running, LEAD, channel, "step_skip", "confirm")
    wait_for(lambda: running.ws.ephemeral(channel.id, LEAD)[seen:], what="the refusal of Skip…")
    assert not running.ws.open_views(LEAD)
    running.settle()
    assert "step_skipped" not in running.kinds(1) and "step_done" not in running.kinds(1)


def test_a_lead_cannot_make_themselves_a_specialist_to_confirm(running):
    channel = declare(running, 1)
    refused(running, LEAD, CONFIRM, channel.id, "Child-safety specialist")
    say(running, LEAD, f"assign child_safety_specialist <@{LEAD}>", channel.id)
    running.settle()
    say(running, LEAD, CONFIRM, channel.id)
    running.settle()
    assert [e["actor"] for e in events(running, 1, "step_done")] == []


def test_a_restricted_role_goes_only_to_people_configured_for_it(running):
    channel = declare(running, 1)
    reply = say(running, LEAD, f"assign child_safety_specialist <@{COMMS}>", channel.id)
    running.settle()
    assert reply.startswith(":no_entry:"), reply
    assert COMMS not in running.ws.members(channel.id)


# -- pages ---------------------------------------------------------------------------------------

def _page_deputy(running, channel) -> None:
    assert not say(running, LEGAL, "page deputy Please watch the clocks", channel.id).startswith(":no_entry:")
    running.settle()
    wait_for(lambda: [m for m in running.ws.dms(DEPUTY) if m.blocks], what="the deputy's page DM")


def _forged_ack(running, user: str, page_value: str) -> str:
    """`user` clicks Acknowledge on the deputy's page DM (a copy of it, with `page_value`)."""
    ws = running.ws
    dm = ws.dm_channel(DEPUTY)
    with ws.lock:
        message = next(m for m in reversed(dm.messages) if m.blocks)
        found = find_element(message.blocks, "page_ack", None, "page")
        if found is None:  # acknowledged: the button left the DM, but a stale copy can still be clicked
            button = {"type": "button", "action_id": "page_ack", "text": {"type": "plain_text", "text": "Acknowledge"},
                      "value": page_value}
            found = ({"type": "actions", "block_id": "page", "elements": [button]}, button)
        block, element = found
        element = copy.deepcopy(element)
        element["value"] = page_value
        mine = ws.dm_channel(user, create=True)
        payload = payloads.block_actions_for_message(
            ws, user=user, channel=mine, message=message, block=block, element=element, value=None,
            trigger_id=ws.mint_trigger(user),
            response_url=ws.mint_response_url(running.sandbox.base_url, channel=mine.id, user=user,
                                              kind="block_actions", message_ts=message.ts))
    seen = len(ws.ephemeral(mine.id, user))
    assert running.driver.send_interaction(payload).ok
    return wait_for(lambda: ws.ephemeral(mine.id, user)[seen:], what="the answer to the ack")[0].text


def _page_state(running, page_id: int) -> str:
    from bot.db.models import Page

    with running.core.db.read() as session:
        return session.get(Page, page_id).state


def test_nobody_else_acknowledges_a_page(running):
    channel = declare(running, 1)
    _page_deputy(running, channel)
    assert ":no_entry:" in _forged_ack(running, OUTSIDER, "1")
    assert ":no_entry:" in _forged_ack(running, LEAD, "1")  # a lead is not the one paged either
    refused(running, LEAD, "ack", channel.id, "No open page is addressed to you")
    refused(running, LEGAL, "ack", channel.id, "No open page is addressed to you")  # who paged is not paged
    running.settle()
    assert _page_state(running, 1) == "open" and "page_acked" not in running.kinds(1)


def test_a_forged_ack_tells_an_outsider_nothing_about_the_page(running):
    channel = declare(running, 1)
    _page_deputy(running, channel)
    assert "Acknowledged" in say(running, DEPUTY, "ack", channel.id)
    running.settle()
    answer = _forged_ack(running, OUTSIDER, "1")
    assert DEPUTY not in answer and "INC-1" not in answer, answer


# -- user text that Slack would turn into a mention or a link -----------------------------------

def test_user_text_never_becomes_a_live_mention_in_a_channel_or_a_dm(running):
    result = running.driver.command(LEAD, f"declare csam-report {HOSTILE} hash 8812", channel=OPS)
    assert result.ok, result
    channel = running.provisioned(1)
    wait_for(lambda: running.ws.pins(channel.id), what="the checklist")
    running.settle()
    here = channel.id
    assert "done" in say(running, SPEC, f'done confirm case_id="{HOSTILE}" category=A1 human_viewed=all', here)
    assert "skipped" in say(running, SPEC, f"skip remove {HOSTILE}", here)
    say(running, LEGAL, f"page deputy {HOSTILE}", here)
    say(running, LEGAL, f"note {HOSTILE}", here)
    say(running, LEAD, f"resolve {HOSTILE}", here)
    running.settle()
    assert "closed" in say(running, LEAD, f"close anyway {HOSTILE}", here)
    running.settle()
    wait_for(lambda: [m for m in running.ws.dms(DEPUTY) if m.blocks], what="the page DM")
    shown = [texts_of(m) for m in running.ws.messages(here)]
    shown += [texts_of(m) for user in (DEPUTY, LEAD, SPEC, LEGAL) for m in running.ws.dms(user)]
    assert shown
    live = [t for t in shown if LIVE.search(t)]
    assert not live, live


def test_an_unknown_subcommand_is_repeated_escaped(running):
    reply = say(running, OUTSIDER, "<!channel>", GENERAL)
    assert reply.startswith("Unknown command")
    assert not LIVE.search(reply), reply


def test_error_messages_repeat_user_text_escaped(running):
    channel = declare(running, 1)
    for text in (f"done confirm case_id=x category={HOSTILE}", f"assign legal {HOSTILE}",
                 f"page {HOSTILE}", f"done {HOSTILE}"):
        reply = say(running, LEAD if "assign" in text else SPEC, text, channel.id)
        assert not LIVE.search(reply), (text, reply)


# -- leaks ---------------------------------------------------------------------------------------

def test_an_outsider_learns_nothing_of_a_restricted_incident(running):
    channel = declare(running, 1, summary="Hash match on upload 8812 case SECRET-77")
    for text, where in (("list", GENERAL), ("status INC-1", GENERAL), ("timeline INC-1 html", GENERAL),
                        ("done INC-1 confirm", GENERAL), ("undo INC-1 confirm x", GENERAL),
                        ("status", channel.id)):
        reply = (forged_command(running, OUTSIDER, where, text) if where == channel.id
                 else say(running, OUTSIDER, text, where))
        assert "SECRET-77" not in reply and channel.id not in reply, (text, reply)
        assert "Confirmed CSAM" not in reply or text == "list", (text, reply)
    assert "Hash match" not in say(running, OUTSIDER, "list", GENERAL)


def test_list_agrees_with_status_for_someone_added_by_hand(running):
    channel = declare(running, 1, summary="Hash match on upload 8812 case SECRET-77")
    assert running.driver.join(COMMS, channel.id, inviter=LEAD).ok
    wait_for(lambda: "member_joined" in running.kinds(1), what="the bot to hear the join")
    refused(running, COMMS, "status", channel.id, "who hold one of its roles")
    listed = say(running, COMMS, "list", OPS)
    assert "SECRET-77" not in listed and channel.id not in listed, listed


# -- parsing that refuses or mangles what a member may do ----------------------------------------

def test_a_note_may_begin_with_an_incident_ref(running):
    channel = declare(running, 1)
    say(running, LEGAL, "note INC-7 is the original report of this upload", channel.id)
    say(running, LEGAL, "note INC-1 was escalated to counsel", channel.id)
    running.settle()
    assert [e["text"] for e in events(running, 1, "note")] == [
        "INC-7 is the original report of this upload", "INC-1 was escalated to counsel"]


# -- no refusal writes anything; nothing crashes -------------------------------------------------

def test_refusals_write_nothing_on_any_incident(running):
    channel = declare(running, 1)
    declare(running, 2, summary="Second hash match")
    numbers = (1, 2)
    for user, text, where in (
        (OUTSIDER, "declare", GENERAL),  # the modal only
        (OUTSIDER, "ack", GENERAL),
        (COMMS, "close INC-1", OPS),
        (COMMS, "page INC-1 legal now", OPS),
        (LEGAL, "severity sev3", channel.id),
        (LEGAL, "resolve done", channel.id),
        (LEGAL, "close anyway because", channel.id),
        (LEGAL, f"assign legal <@{COMMS}>", channel.id),
        (LEGAL, "done ncmec-report report_id=1", channel.id),
        (SPEC, "correct 1 x", OPS),
    ):
        before = {n: len(running.timeline(n)) for n in numbers}
        say(running, user, text, where)
        running.settle()
        assert {n: len(running.timeline(n)) for n in numbers} == before, (user, text)
    assert len(events(running, 1, "declared")) == 1 and len(events(running, 2, "declared")) == 1


@pytest.mark.parametrize("text", [
    "done", "done confirm =x", "done confirm a", 'done "confirm', "done confirm case_id=\x00x category=A1 human_viewed=all",
    "skip", "skip confirm", "undo", "undo nope x", "assign", "assign legal", "assign legal <@U0NOBODY1>",
    "assign nope <@U0LEGAL01>", "page", "page nope", "page legal " + "x" * 3000, "severity", "severity sev9",
    "timeline pdf", "correct", "correct 999999999 x", "correct -1 x", "correct 1", "close now",
    "close anyway", "note", "note " + "y" * 3001, "status INC-999999999", "status INC-0",
    "INC-1", "resolve " + "z" * 5000, "\u00a0done\u00a0confirm",
])
def test_odd_commands_are_answered_without_a_crash(running, caplog, text):
    channel = declare(running, 1)
    result = running.driver.command(LEAD, text, channel=channel.id)
    assert result.ok, (text, result)
    running.settle()
    assert not unexpected_errors(caplog), text


@pytest.fixture
def running_pg(sandbox, tmp_path):
    from tests.conftest import make_bot
    from tests.support import postgres_schema

    with postgres_schema() as url:
        handle = make_bot(sandbox, url)
        try:
            yield handle
        finally:
            handle.server.stop()


def test_a_nul_character_in_a_note_is_answered_in_words(running_pg, caplog):
    """PostgreSQL stores no NUL in text: the character is dropped, never a traceback."""
    running = running_pg
    channel = declare(running, 1)
    reply = say(running, LEGAL, "note before\x00after", channel.id)
    running.settle()
    assert not unexpected_errors(caplog), reply
    assert "error `E-" not in reply, reply
