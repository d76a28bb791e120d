"""Declaring an incident end to end: signed requests in, Web API calls out, through the sandbox."""

from __future__ import annotations

import time

import pytest

from tests.support import wait_for

pytestmark = pytest.mark.e2e

LEAD, SPEC, LEGAL, OUTSIDER = "U0LEAD001", "U0SPEC001", "U0LEGAL01", "U0OUTSID1"


def declared_channel(running, name: str, timeout: float = 10.0):
    number = int(name.split("-")[1])
    channel = running.provisioned(number, timeout)
    assert channel.name == name
    assert running.ws.pins(channel.id)
    return channel


def test_declare_by_command_creates_private_channel_invites_and_pins(running):
    result = running.driver.command(LEAD, "declare csam-report Hash match on upload 8812")
    assert result.status == 200 and result.elapsed < 1.0
    # acked at once; the confirmation with the number follows on the response_url
    confirmation = wait_for(lambda: [m for m in running.ws.ephemeral("C0OPS0001", LEAD) if "INC-1" in m.text],
                            what="the ephemeral confirmation")[0]
    assert "inc-1-csam-report" in confirmation.text

    channel = declared_channel(running, "inc-1-csam-report")
    assert channel.is_private
    members = set(running.ws.members(channel.id))
    # the declarer, and every user (and user-group member) of the playbook's roles
    for user in (LEAD, "U0DEPU001", SPEC, "U0SPEC002", LEGAL, "U0GC00001"):
        assert user in members
    assert OUTSIDER not in members
    assert "INC-1" in channel.topic["value"]

    pinned = running.ws.pinned_messages(channel.id)
    assert len(pinned) == 1
    checklist = pinned[0]
    assert checklist.unfurl_links is False and checklist.unfurl_media is False
    text = str(checklist.blocks)
    assert "Specialist confirms" in text or "confirm" in text
    assert any(b.get("type") == "actions" for b in checklist.blocks)
    # no bot message anywhere unfurls
    assert all(m.unfurl_links is False and m.unfurl_media is False
               for m in running.ws.messages(channel.id) if m.source == "api")

    kinds = running.kinds(1)
    assert kinds[0] == "declared"
    order = [kinds.index(k) for k in ("declared", "role_assigned", "channel_created", "checklist_posted",
                                      "checklist_pinned", "topic_set", "member_invited")]
    assert order == sorted(order)
    invited = {e["data"]["user"] for e in running.timeline(1) if e["kind"] == "member_invited"}
    assert {LEAD, SPEC, LEGAL} <= invited


def test_second_declaration_gets_the_next_number(running):
    running.driver.command(LEAD, "declare csam-report First case 1001")
    running.driver.command(LEAD, "declare csam-report Second case 1002")
    declared_channel(running, "inc-1-csam-report")
    declared_channel(running, "inc-2-csam-report")


def test_declare_by_modal(running):
    result = running.driver.command(LEAD, "declare")
    assert result.status == 200
    view = wait_for(lambda: running.ws.open_views(LEAD), what="the declare modal")[-1]
    assert view.callback_id == "declare"
    submitted = running.driver.submit_view(LEAD, view.id, {
        "playbook": {"value": "csam-report"},
        "summary": {"value": "Hash match on upload 9911"},
    })
    assert submitted.ok and not submitted.errors
    channel = declared_channel(running, "inc-1-csam-report")
    assert channel.is_private
    confirmation = wait_for(lambda: [m for m in running.ws.ephemeral("C0OPS0001", LEAD) if "INC-1" in m.text],
                            what="the ephemeral confirmation")
    assert confirmation


def test_modal_without_summary_shows_field_error_and_declares_nothing(running):
    running.driver.command(LEAD, "declare")
    view = wait_for(lambda: running.ws.open_views(LEAD))[-1]
    submitted = running.driver.submit_view(LEAD, view.id, {
        "playbook": {"value": "csam-report"}, "summary": {"value": "   "}})
    assert submitted.errors and "summary" in submitted.errors
    running.settle()
    assert running.ws.channel_by_name("inc-1-csam-report") is None


def test_unknown_playbook_and_missing_summary_get_clear_answers(running):
    unknown = running.driver.command(LEAD, "declare nonsense Something 1")
    assert "no playbook `nonsense`" in unknown.message.text and "csam-report" in unknown.message.text
    assert running.driver.command(LEAD, "declare csam-report").ok  # no summary: the form, playbook chosen
    view = wait_for(lambda: running.ws.open_views(LEAD))[-1]
    assert {b["block_id"]: b for b in view.blocks}["playbook"]["element"]["initial_option"]["value"] == "csam-report"
    running.settle()
    assert running.ws.channel_by_name("inc-1-csam-report") is None


def test_status_list_and_help(running):
    running.driver.command(LEAD, "declare csam-report Hash match 77")
    channel = declared_channel(running, "inc-1-csam-report")
    status = running.driver.command(LEAD, "status", channel=channel.id)
    assert status.ok and "INC-1" in str(status.message.blocks)
    listed = running.driver.command(LEAD, "list")
    assert "INC-1" in listed.message.text
    hidden = running.driver.command(OUTSIDER, "list", channel="C0GENERAL")
    assert "INC-1" not in hidden.message.text
    helped = running.driver.command(OUTSIDER, "help", channel="C0GENERAL")
    assert "declare" in helped.message.text


def test_bad_signature_and_stale_timestamp_are_rejected_and_change_nothing(running):
    bad = running.driver.command(LEAD, "declare csam-report Forged 1", signature="v0=" + "0" * 64)
    assert bad.status == 401
    stale = running.driver.command(LEAD, "declare csam-report Replayed 2", timestamp=int(time.time()) - 301)
    assert stale.status == 401
    running.settle()
    assert running.kinds(1) == []
    assert running.ws.channel_by_name("inc-1-csam-report") is None


@pytest.mark.parametrize("fault", ["5xx", "429"])
def test_slack_errors_during_declaration_still_complete_with_one_channel(running, fault):
    faults = running.sandbox.faults
    for method in ("conversations.create", "chat.postMessage", "conversations.invite", "pins.add"):
        if fault == "5xx":
            # chat.postMessage fails more often than slack_sdk retries: the outbox retries the rest
            faults.server_error(method, count=6 if method == "chat.postMessage" else 2, status=503)
        else:
            faults.rate_limit(method, count=1, retry_after=1)
    running.driver.command(LEAD, "declare csam-report Flaky Slack 42")
    # each 429 waits its Retry-After (1 s): allow for a loaded machine
    channel = declared_channel(running, "inc-1-csam-report", timeout=30)
    assert [c.name for c in running.ws.channels.values() if c.name.startswith("inc-1")] == [channel.name]
    assert len(running.ws.pinned_messages(channel.id)) == 1
    checklists = [m for m in running.ws.messages(channel.id) if (m.metadata or {}).get("event_type") == "safeguard_checklist"]
    assert len(checklists) == 1
    wait_for(lambda: "member_invited" in running.kinds(1), what="the invitations")


def test_answers_lost_after_slack_acted_are_completed_without_duplicates(running):
    """Slack created the channel and posted the checklist, but the answers never came back."""
    faults = running.sandbox.faults
    for method in ("conversations.create", "chat.postMessage", "pins.add"):
        faults.lost_answer(method, count=1, status=503)
    running.driver.command(LEAD, "declare csam-report Lost answers 43")
    channel = declared_channel(running, "inc-1-csam-report", timeout=30)
    assert [c.name for c in running.ws.channels.values() if c.name.startswith("inc-1")] == [channel.name]
    assert [c.error for c in running.sandbox.calls_of("conversations.create")][:2] == ["service_unavailable",
                                                                                     "name_taken"]
    checklists = [m for m in running.ws.messages(channel.id)
                  if (m.metadata or {}).get("event_type") == "safeguard_checklist"]
    assert len(checklists) == 1 and len(running.ws.pinned_messages(channel.id)) == 1
    assert running.kinds(1).count("channel_created") == 1


def test_an_older_channel_with_the_same_name_is_never_taken_over(running):
    """A channel the bot made before this incident existed (another life of the database, or a
    second bot on the workspace) keeps its history to itself."""
    from slack_sdk import WebClient

    client = WebClient(base_url=running.sandbox.api_url, token=running.sandbox.bot_token)
    old = client.conversations_create(name="inc-1-csam-report", is_private=True)["channel"]
    client.chat_postMessage(channel=old["id"], text="An older incident's conversation")
    running.ws.channels[old["id"]].created -= 7 * 86400  # made a week ago
    running.driver.command(LEAD, "declare csam-report Hash match 44")
    channel = declared_channel(running, "inc-1-csam-report-2")
    assert channel.id != old["id"]
    assert running.ws.channels[old["id"]].members == [running.ws.bot_user_id]  # nobody invited there
    assert [m.text for m in running.ws.messages(old["id"]) if m.source == "api"] == ["An older incident's conversation"]
