"""Regression tests of the hardening issue: long and hostile input never costs a page, a
checklist or a reply, and user text never becomes a live mention where the bot repeats it."""

from __future__ import annotations

import pytest

from sandbox.blockkit import find_element
from tests.support import wait_for

pytestmark = pytest.mark.e2e

LEAD, LEGAL = "U0LEAD001", "U0LEGAL01"


def declared(running, summary="Threat in comments 4411"):
    assert running.driver.command(LEAD, f"declare imminent-harm {summary}").ok
    return running.provisioned(1)


@pytest.mark.parametrize("length", [3_000, 45_000])
def test_a_page_with_a_long_reason_still_reaches_legal_with_its_button(running, length):
    channel = declared(running)
    answer = running.driver.command(LEAD, "page legal " + "x" * length, channel=channel.id)
    assert answer.ok and answer.message.text.startswith(":pager:")
    running.settle()
    dms = wait_for(lambda: running.ws.dms(LEGAL), what="the page DM")
    assert len(dms) == 1
    assert find_element(dms[0].blocks, "page_ack") is not None  # the Acknowledge button is there
    posts = [m for m in running.ws.messages(channel.id) if "Paging" in (m.text or "")]
    assert len(posts) == 1 and len(posts[0].text) <= 40_000
    assert "page_failed" not in running.kinds(1)


def test_user_text_is_escaped_where_the_bot_repeats_it(running):
    channel = declared(running, "Threat <!channel> & <https://evil.example|click>")
    running.driver.command(LEAD, "page legal <!channel> <!subteam^S0LEGAL> now", channel=channel.id)
    running.settle()
    [dm] = wait_for(lambda: running.ws.dms(LEGAL), what="the page DM")
    assert "<!channel>" not in dm.text and "&lt;!channel&gt;" in dm.text
    assert "<!subteam" not in str(dm.blocks)
    checklist = running.ws.pinned_messages(channel.id)[0]
    assert "<!channel>" not in str(checklist.blocks) and "<https://evil" not in str(checklist.blocks)
    refused = running.driver.command(LEAD, "assign <!channel> <@U0COMMS01>", channel=channel.id)
    assert "<!channel>" not in refused.message.text


def test_a_resolution_full_of_ampersands_keeps_the_checklist_updating(running):
    channel = declared(running, "&" * 490)
    running.driver.command(LEAD, "resolve " + "<" * 990, channel=channel.id)
    running.settle()
    checklist = running.ws.pinned_messages(channel.id)[0]
    wait_for(lambda: "resolved" in str(running.ws.pinned_messages(channel.id)[0].blocks), what="the redraw")
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in checklist.blocks if b.get("type") == "section")
    assert not [c for c in running.ws.calls_of("chat.update") if not c.response.get("ok")]


def test_huge_numbers_are_refused_plainly(running):
    channel = declared(running)
    answer = running.driver.command(LEAD, "correct 99999999999999999999 x", channel=channel.id)
    assert answer.status == 200 and answer.message.text.startswith(":no_entry:")


def test_a_cold_start_during_a_slack_outage_keeps_declarations(sandbox, db_url):
    """Slack answers auth.test with 503 when the bot starts: it says it is not ready, yet a
    declaration made then is saved, answered honestly, and set up once Slack is back."""
    import httpx

    from tests.conftest import make_bot

    sandbox.faults.outage("auth.test", status=503)  # until cleared
    running = make_bot(sandbox, db_url)
    try:
        health = httpx.get(running.server.url + "/healthz", timeout=5)
        assert health.status_code == 503 and "not answering" in health.json()["slack"]
        answer = running.driver.command(LEAD, "declare imminent-harm Threat in comments 4411")
        assert answer.ok and "saved" in answer.message.text and "reinstall" not in answer.message.text
        assert running.kinds(1)[0] == "declared"
        sandbox.faults.clear("auth.test")
        wait_for(lambda: httpx.get(running.server.url + "/healthz", timeout=5).status_code == 200, timeout=20,
                 what="the bot to learn who it is")
        running.provisioned(1, timeout=30)
        assert len(running.ws.pinned_messages(running.ws.channel_by_name("inc-1-imminent-harm").id)) == 1
    finally:
        running.server.stop()


def test_lost_answers_never_make_a_second_dm_or_notice(running):
    """Slack posts the page DM and the channel notice, but the bot never hears back (a 5xx): the
    retry finds them by their metadata instead of posting them again."""
    channel = declared(running)
    running.settle()
    running.sandbox.faults.lost_answer("chat.postMessage", count=2)
    assert running.driver.command(LEAD, "page legal Need a disclosure decision", channel=channel.id).ok
    wait_for(lambda: "page_sent" in running.kinds(1), timeout=20, what="the DM's retry to find it")
    running.settle(timeout=20)
    assert len(running.ws.dms(LEGAL)) == 1
    notices = [m for m in running.ws.messages(channel.id) if "Paging" in (m.text or "")]
    assert len(notices) == 1
    assert running.kinds(1).count("page_sent") == 1


def test_a_page_before_the_channel_exists_is_announced_once_it_does(running):
    """Slack is slow to create the channel; a lead pages from elsewhere meanwhile: the DM goes out
    at once and the channel's notice follows as soon as the channel exists, never dropped."""
    running.sandbox.faults.outage("conversations.create", status=503)
    assert running.driver.command(LEAD, "declare imminent-harm Threat in comments 4411").ok
    answer = running.driver.command(LEAD, "page INC-1 legal Need a disclosure decision", channel="C0OPS0001")
    assert answer.message.text.startswith(":pager:"), answer.message.text
    wait_for(lambda: running.ws.dms(LEGAL), what="the page DM while the channel does not exist")
    running.sandbox.faults.clear("conversations.create")
    channel = running.provisioned(1, timeout=60)
    wait_for(lambda: [m for m in running.ws.messages(channel.id) if "Paging" in (m.text or "")],
             timeout=30, what="the page's notice in the new channel")
    running.settle(timeout=20)
    assert len([m for m in running.ws.messages(channel.id) if "Paging" in (m.text or "")]) == 1
