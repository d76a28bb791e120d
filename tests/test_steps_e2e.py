"""Working an incident's checklist end to end through the sandbox: buttons, modals, text commands."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sandbox import payloads
from sandbox.blockkit import find_element
from tests.conftest import make_bot
from tests.support import wait_for

pytestmark = pytest.mark.e2e

LEAD, SPEC, LEGAL, OUTSIDER = "U0LEAD001", "U0SPEC001", "U0LEGAL01", "U0OUTSID1"
STEP_PLAYBOOKS = Path(__file__).parent / "playbooks_steps"


def declare(running, playbook="csam-report", summary="Hash match on upload 8812"):
    result = running.driver.command(LEAD, f"declare {playbook} {summary}")
    assert result.ok, result
    return running.provisioned(1)


def checklist(running, channel):
    return running.ws.pinned_messages(channel.id)[0]


def step_events(running, kind):
    return [e for e in running.timeline(1) if e["kind"] == kind]


def click(running, user, channel, action_id, step):
    message = checklist(running, channel)
    block = f"act:{step}" if action_id in ("step_done", "step_skip") else f"step:{step}"
    return running.driver.click(user, channel.id, message.ts, action_id, block_id=block)


def has_block(message, block_id):
    return any(b.get("block_id") == block_id for b in message.blocks)


def open_view(running, user, callback_id):
    return wait_for(lambda: next((v for v in reversed(running.ws.open_views(user)) if v.callback_id == callback_id),
                                 None), what=f"the {callback_id} modal")


def test_whole_csam_report_by_buttons(running):
    channel = declare(running)
    # confirm: the button opens the step's modal; values are recorded
    assert click(running, SPEC, channel, "step_done", "confirm").ok
    view = open_view(running, SPEC, "step_fields")
    done = running.driver.submit_view(SPEC, view.id, {
        "case_id": {"value": "CASE-881"}, "category": {"value": "A1"}, "human_viewed": {"value": "all"}})
    assert done.ok and not done.errors
    running.settle()
    confirmed = step_events(running, "step_done")[0]
    assert confirmed["actor"] == SPEC
    assert confirmed["data"] == {"step": "confirm",
                                 "values": {"case_id": "CASE-881", "category": "A1", "human_viewed": "all"}}

    for step, user, values in [
        ("remove", SPEC, {"account_action": {"value": "banned"}, "content_count": {"value": "3"}}),
        ("ncmec-report", LEAD, {"report_id": {"value": "123456"}}),
        ("preservation-hold", LEGAL, {"hold_ref": {"value": "HOLD-9"}}),
        ("hold-review", LEGAL, {"decision": {"value": "release-at-expiry"}}),
    ]:
        wait_for(lambda s=step: has_block(checklist(running, channel), f"act:{s}"),
                 what=f"the Done button of {step}")
        assert click(running, user, channel, "step_done", step).ok
        view = open_view(running, user, "step_fields")
        result = running.driver.submit_view(user, view.id, values)
        assert result.ok and not result.errors, (step, result.errors)
        running.settle()

    # skip by button: a modal asks for the reason
    assert click(running, SPEC, channel, "step_skip", "hash-share").ok
    view = open_view(running, SPEC, "step_skip")
    assert running.driver.submit_view(SPEC, view.id, {"reason": {"value": "Hashes already shared by case 880"}}).ok
    running.settle()

    kinds = running.kinds(1)
    assert kinds.count("step_done") == 5 and kinds.count("step_skipped") == 1
    final = wait_for(lambda: "6/6 steps done" in str(checklist(running, channel).blocks) and checklist(running, channel),
                     what="the checklist to show every step")
    text = str(final.blocks)
    assert "Hashes already shared by case 880" in text and "123456" in text
    # the classification is on the timeline, never repeated in Slack
    assert "`A1`" not in text and "on the timeline only:_ Industry classification" in text


def test_whole_csam_report_by_text_commands(running):
    channel = declare(running)
    cmd = lambda user, text: running.driver.command(user, text, channel=channel.id)  # noqa: E731
    assert "done" in cmd(SPEC, "done confirm case_id=CASE-1 category=B2 human_viewed=some").message.text
    assert "done" in cmd(SPEC, "done remove account_action=suspended content_count=2").message.text
    assert "done" in cmd(LEAD, "done ncmec-report report_id=987654").message.text
    assert "skipped" in cmd(SPEC, "skip hash-share Programme outage, retry tomorrow").message.text
    assert "reopened" in cmd(SPEC, "undo hash-share programme is back").message.text
    assert "done" in cmd(SPEC, 'done hash-share hash_count=4 programmes="NCMEC hash sharing"').message.text
    assert "done" in cmd(LEGAL, "done preservation-hold hold_ref=H-77").message.text
    assert "Comms" in cmd(LEAD, "assign comms <@U0COMMS01>").message.text
    assert "SEV2" in cmd(LEAD, "severity sev2").message.text
    assert "timeline" in cmd(LEAD, "note Report acknowledged by NCMEC, case 987654").message.text
    status = cmd(LEAD, "status")
    assert "5/6" in status.message.text
    assert "resolved" in cmd(LEAD, "resolve Reported, removed, hold in place").message.text
    assert "closed" in cmd(LEAD, "close").message.text
    running.settle()
    wait_for(lambda: running.ws.channel(channel.id).is_archived, what="the channel to be archived")
    assert "U0COMMS01" in running.ws.channel(channel.id).members  # `assign` invited them
    [assigned] = [e for e in running.timeline(1) if e["kind"] == "role_assigned" and e["data"].get("user") == "U0COMMS01"]
    assert assigned["actor"] == LEAD and assigned["data"]["role"] == "comms"
    kinds = running.kinds(1)
    for kind in ("step_done", "step_skipped", "step_reopened", "role_assigned", "severity_changed", "note",
                 "resolved", "closed", "channel_archived"):
        assert kind in kinds, kind
    # the 330-day preservation review is a legal clock: closing keeps it
    assert "timer_kept" in kinds
    values = [e["data"]["values"] for e in running.timeline(1) if e["kind"] == "step_done"]
    assert {"report_id": "987654"} in values


def test_invalid_field_in_modal_shows_error_and_records_nothing(running):
    channel = declare(running)
    running.driver.command(SPEC, "done confirm case_id=C1 category=A2 human_viewed=none", channel=channel.id)
    before = running.kinds(1)
    result = running.driver.command(LEAD, "done ncmec-report", channel=channel.id)
    assert result.ok
    view = open_view(running, LEAD, "step_fields")
    bad = running.driver.submit_view(LEAD, view.id, {"report_id": {"value": "not-a-number"}})
    assert bad.errors and "report_id" in bad.errors
    running.settle()
    assert running.kinds(1) == before
    # a bad value typed as text gets the same answer, ephemeral, and nothing recorded
    typed = running.driver.command(LEAD, "done ncmec-report report_id=12ab", channel=channel.id)
    assert "must match" in typed.message.text
    assert running.kinds(1) == before


def test_after_ordering_is_enforced(running):
    channel = declare(running)
    early = running.driver.command(LEAD, "done ncmec-report report_id=1", channel=channel.id)
    assert "waits on" in early.message.text
    assert "step_done" not in running.kinds(1)
    running.driver.command(SPEC, "done confirm case_id=C1 category=A1 human_viewed=all", channel=channel.id)
    ok = running.driver.command(LEAD, "done ncmec-report report_id=1", channel=channel.id)
    assert "done" in ok.message.text


def test_non_member_is_refused(running):
    channel = declare(running)
    message = checklist(running, channel)
    ws = running.ws
    block, element = find_element(message.blocks, "step_done", None, "act:confirm")
    payload = payloads.block_actions_for_message(
        ws, user=OUTSIDER, channel=channel, message=message, block=block, element=element, value=None,
        trigger_id=ws.mint_trigger(OUTSIDER),
        response_url=ws.mint_response_url(running.sandbox.base_url, channel=channel.id, user=OUTSIDER,
                                          kind="block_actions", message_ts=message.ts),
    )
    result = running.driver.send_interaction(payload)
    assert result.ok
    refusal = wait_for(lambda: [m for m in ws.ephemeral(channel.id, OUTSIDER) if "Only members" in m.text],
                       what="the refusal")
    assert refusal
    running.settle()
    assert "step_done" not in running.kinds(1)
    assert not ws.open_views(OUTSIDER)


@pytest.mark.timing  # run alone, after the parallel run (run.py): other tests' load would slow the clicks
def test_ten_clicks_in_a_second_make_at_most_two_updates(sandbox, db_url):
    running = make_bot(sandbox, db_url, playbooks=STEP_PLAYBOOKS)
    try:
        channel = declare(running, playbook="drill", summary="Tabletop 1")
        message = checklist(running, channel)
        updates_before = len([c for c in running.ws.calls_of("chat.update")])
        started = time.monotonic()
        with ThreadPoolExecutor(10) as pool:  # ten people (or one impatient one) clicking at once
            results = list(pool.map(lambda n: running.driver.click(
                LEAD, channel.id, message.ts, "step_done", block_id=f"act:s{n}"), range(1, 11)))
        span = time.monotonic() - started
        assert all(r.ok for r in results)
        assert span < 1.0, f"the ten clicks took {span:.2f} s, not within a second"
        running.settle()
        wait_for(lambda: running.kinds(1).count("step_done") == 10, what="ten steps done")
        final = wait_for(lambda: "10/10 steps done" in str(checklist(running, channel).blocks)
                         and checklist(running, channel), what="the final checklist", timeout=15)
        updates = len(running.ws.calls_of("chat.update")) - updates_before
        # at most one redraw a second, plus the first: two, as the clicks fit in a second
        assert 1 <= updates <= 2, [(c.method, str(c.args.get("ts") or ""), str(c.args.get("text"))[:60], c.at)
                                   for c in running.ws.calls if c.method.startswith("chat.")]
        assert str(final.blocks).count("white_check_mark") == 10
    finally:
        running.server.stop()


def test_someone_removed_from_the_channel_can_no_longer_act(running):
    channel = declare(running)
    view_opened = running.driver.command(SPEC, "done confirm", channel=channel.id)
    assert view_opened.ok
    view = open_view(running, SPEC, "step_fields")
    assert running.driver.leave(SPEC, channel.id).ok
    wait_for(lambda: "member_left" in running.kinds(1), what="the bot to hear the removal")
    result = running.driver.submit_view(SPEC, view.id, {
        "case_id": {"value": "C9"}, "category": {"value": "A1"}, "human_viewed": {"value": "all"}})
    assert result.errors and "Only members" in " ".join(result.errors.values())
    assert "step_done" not in running.kinds(1)
    # joining again (a member invites them back) restores access
    assert running.driver.join(SPEC, channel.id, inviter=LEAD).ok
    wait_for(lambda: running.kinds(1).count("member_joined") == 1, what="the rejoin")
    again = running.driver.command(SPEC, "done confirm case_id=C9 category=A1 human_viewed=all", channel=channel.id)
    assert "done" in again.message.text


def test_assign_refuses_who_cannot_act_and_brings_back_who_left(running):
    from sandbox.models import User

    running.ws.add_user(User("U0GONE001", "gone", "Former Colleague", deleted=True))
    channel = declare(running)
    for who, says in [("<@U0GONE001|gone>", "deactivated"), ("<@U0BOT0001|safeguard>", "is a bot"),
                      ("UNOBODY01", "no user `UNOBODY01`")]:
        refused = running.driver.command(LEAD, f"assign legal {who}", channel=channel.id)
        assert says in refused.message.text, refused.message.text
    assert "role_assigned" not in [k for k in running.kinds(1)[-3:]]

    assert running.driver.leave(SPEC, channel.id).ok
    wait_for(lambda: "member_left" in running.kinds(1), what="the bot to hear the departure")
    answer = running.driver.command(LEAD, f"assign child_safety_specialist <@{SPEC}>", channel=channel.id)
    assert "is now" in answer.message.text
    running.settle()
    wait_for(lambda: SPEC in running.ws.channel(channel.id).members, what="the specialist invited back")
    assert running.driver.command(SPEC, "status", channel=channel.id).ok


def test_the_topic_follows_severity_and_resolution(running):
    channel = declare(running)
    assert "SEV1" in running.ws.channel(channel.id).topic["value"]
    running.driver.command(LEAD, "severity sev2", channel=channel.id)
    running.settle()
    assert " · SEV2 · " in running.ws.channel(channel.id).topic["value"]
    running.driver.command(LEAD, "resolve Removed and reported", channel=channel.id)
    running.settle()
    topic = running.ws.channel(channel.id).topic["value"]
    assert topic.startswith("INC-1 · ") and "SEV2 · RESOLVED" in topic
    assert running.kinds(1).count("topic_set") == 3


def test_done_with_a_wrong_value_says_so_and_a_user_field_needs_a_real_user(sandbox, db_url):
    running = make_bot(sandbox, db_url, playbooks=STEP_PLAYBOOKS)
    try:
        channel = declare(running, playbook="review", summary="Second opinion 1")

        def cmd(text):
            return running.driver.command(LEAD, text, channel=channel.id)

        typo = cmd("done pick level=Z9 nosuch=1")  # `who` missing: the modal would open
        assert "Choose one of: quick, full" in typo.message.text and "`nosuch` is not a field" in typo.message.text
        assert not running.ws.open_views(LEAD)
        nobody = cmd("done pick who=UNOSUCH99 level=full")
        assert "no such user" in nobody.message.text
        assert "step_done" not in running.kinds(1)
        assert "done" in cmd(f"done pick who=<@{SPEC}> level=full").message.text
        [done] = [e for e in running.timeline(1) if e["kind"] == "step_done"]
        assert done["data"]["values"] == {"who": SPEC, "level": "full"}
        shown = wait_for(lambda: "1/1 steps done" in str(checklist(running, channel).blocks)
                         and str(checklist(running, channel).blocks), what="the redrawn checklist")
        assert f"Second reviewer: <@{SPEC}>" in shown  # a mention, not a raw id (under the field's label)
    finally:
        running.server.stop()
