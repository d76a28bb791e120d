"""The role policy end to end: every change to an incident, typed or clicked, is refused for
someone outside the organisation's `permissions:` (a :no_entry: answer naming who can, and
nothing on the timeline) and done for someone inside; restricted playbooks, forged buttons,
close with legal steps open, undo with a reason, and the review after an undo and a redo.

The incidents are csam-report (restricted; `confirm` is for the specialists alone) declared by
the demo organisation's lead, Ana (U0LEAD001)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from bot.timeline import export
from bot.timeline.build import build_review
from bot.timeline.review import clock_rows
from tests.conftest import make_bot
from tests.policy_support import (
    COMMS,
    CONFIRM,
    CONFIRM_TITLE,
    DEPUTY,
    GC,
    GENERAL,
    LEAD,
    LEGAL,
    NCMEC_TITLE,
    OPS,
    OUTSIDER,
    SPEC,
    click,
    click_refused,
    declare,
    events,
    forged_click,
    input_block,
    no_entries,
    open_view,
    refused,
    say,
    view_text,
)
from tests.support import wait_for

pytestmark = pytest.mark.e2e

SPECIALISTS = "Child-safety specialist"
LEADS_ONLY = "incident leads"


def test_text_commands_follow_the_policy(running):
    channel = declare(running, 1)
    here = channel.id

    # step (confirm: who: [child_safety_specialist]): not legal, not even the incident lead
    refused(running, LEGAL, CONFIRM, here, SPECIALISTS, CONFIRM_TITLE)
    refused(running, LEGAL, "skip confirm Not needed", here, SPECIALISTS)
    refused(running, LEAD, CONFIRM, here, SPECIALISTS)
    # severity, resolve, close, assign: incident_lead / deputy / leads
    refused(running, LEGAL, "severity sev2", here, "Incident lead", "Deputy", LEADS_ONLY, "severity")
    refused(running, LEGAL, "resolve Reported", here, "Incident lead", LEADS_ONLY, "resolve INC-1")
    refused(running, LEGAL, "close", here, "Incident lead", LEADS_ONLY, "close INC-1")
    refused(running, LEGAL, "close anyway Duplicate", here, "Incident lead", "close INC-1")
    refused(running, SPEC, "assign legal <@U0GC00001>", here, "Incident lead", "assign roles")
    assert "step_done" not in running.kinds(1)

    # the specialist confirms
    assert "done" in say(running, SPEC, CONFIRM, here)
    [confirmed] = events(running, 1, "step_done")
    assert confirmed["actor"] == SPEC and confirmed["data"]["step"] == "confirm"
    # undo is a step action too: legal may not reopen it, the incident lead may not either
    refused(running, LEGAL, "undo confirm Wrong case", here, SPECIALISTS)
    refused(running, LEAD, "undo confirm Wrong case", here, SPECIALISTS)
    # ncmec-report (owner incident_lead, no who:): not the specialist
    refused(running, SPEC, "done ncmec-report report_id=123", here, "Incident lead")

    # note, page, export: any member (legal is one) ...
    assert "timeline" in say(running, LEGAL, "note Counsel briefed", here)
    assert events(running, 1, "note")[-1]["actor"] == LEGAL
    assert say(running, LEGAL, "page deputy Please watch the clocks", here).startswith(":no_entry:") is False
    say(running, LEGAL, "timeline md", here)
    running.settle()
    wait_for(lambda: events(running, 1, "page_sent") and events(running, 1, "timeline_exported"),
             what="the page and the export")
    # ... but not someone outside the channel, typed in it ...
    for text in ("note I was here", "timeline", "page legal Look", "status"):
        refused(running, OUTSIDER, text, here, "Only members of INC-1's channel", forged=True)
    # ... nor from elsewhere, naming it (only the leads may)
    refused(running, OUTSIDER, "note INC-1 I was here", GENERAL, "Run this in INC-1's channel", LEADS_ONLY)
    refused(running, COMMS, "note INC-1 From comms", OPS, "Run this in INC-1's channel")
    refused(running, COMMS, "timeline INC-1", OPS, "Run this in INC-1's channel")
    assert COMMS not in running.ws.members(here)

    # the incident lead, the deputy: allowed
    assert "SEV2" in say(running, LEAD, "severity sev2", here)
    assert "is now" in say(running, DEPUTY, f"assign legal <@{GC}>", here)
    assert "resolved" in say(running, LEAD, "resolve Reported and removed", here)
    running.settle()
    assert [e["actor"] for e in running.timeline(1) if e["kind"] in ("severity_changed", "resolved")] == [LEAD, LEAD]


def test_buttons_follow_the_policy_and_a_forged_button_is_refused(running):
    first = declare(running, 1)
    # Done on confirm by legal: refused on the response_url, no modal, nothing written
    click_refused(running, LEGAL, first, "step_done", "confirm", SPECIALISTS)
    # the specialist may: the modal opens
    click(running, SPEC, first, "step_done", "confirm")
    view = open_view(running, SPEC, "step_fields")
    assert running.driver.submit_view(SPEC, view.id, {
        "case_id": {"value": "CASE-1"}, "category": {"value": "A2"}, "human_viewed": {"value": "all"}}).ok
    running.settle()
    assert len(events(running, 1, "step_done")) == 1
    wait_for(lambda: any(b.get("block_id") == "act:remove" for b in running.ws.pinned_messages(first.id)[0].blocks),
             what="the redrawn checklist")
    # Undo by legal, Close by legal and by the specialist: refused
    click_refused(running, LEGAL, first, "step_undo", "confirm", SPECIALISTS)
    click_refused(running, LEGAL, first, "incident_close", None, "Incident lead", LEADS_ONLY)
    click_refused(running, SPEC, first, "incident_close", None, "Incident lead", LEADS_ONLY)

    # Forged: a click in INC-1's channel whose value names INC-2's step. The specialist is in
    # both, and may act in INC-2 from its own channel: only the channel check stands in the way.
    second = declare(running, 2, summary="Second hash match")
    assert "done" in say(running, SPEC, CONFIRM, second.id)
    running.settle()
    before = {n: len(running.timeline(n)) for n in (1, 2)}
    forgeries = [
        (SPEC, "step_done", "act:remove", "2:remove"),
        (SPEC, "step_skip", "act:remove", "2:remove"),
        (SPEC, "step_undo", "step:confirm", "2:confirm"),
        (LEAD, "incident_close", "incident", "2"),
    ]
    for user, action_id, block_id, value in forgeries:
        result = forged_click(running, user, first, action_id, block_id, value)
        assert result.ok, result
        running.settle()
        # (refused in the middleware: the answer goes to the response_url, the ack is empty)
        wait_for(lambda u=user: [m for m in running.ws.ephemeral(first.id, u)
                                 if "That names INC-2, but this is INC-1's channel" in m.text],
                 timeout=5, what=f"the refusal of {action_id}")
        assert not running.ws.open_views(user), action_id
    assert {n: len(running.timeline(n)) for n in (1, 2)} == before
    assert "step_reopened" not in running.kinds(2)


def test_a_refused_forged_button_is_told_on_the_response_url(running):
    first = declare(running, 1)
    assert forged_click(running, SPEC, first, "step_done", "act:confirm", "2:confirm").ok
    running.settle()
    wait_for(lambda: no_entries(running, first, SPEC), timeout=2, what="the refusal on the response_url")


def test_a_restricted_declaration_by_an_outsider_keeps_them_out(running):
    answer = say(running, COMMS, "declare csam-report Report forwarded by press office", OPS)
    assert "INC-1" in answer and f"<@{LEAD}>" in answer and "not added" in answer
    channel = running.provisioned(1)
    running.settle()
    members = running.ws.members(channel.id)
    assert COMMS not in members
    assert {LEAD, SPEC, LEGAL} <= set(members)
    [declared] = events(running, 1, "declared")
    assert declared["actor"] == COMMS
    listed = say(running, COMMS, "list", OPS)
    assert "INC-1" in listed and "restricted" in listed
    assert "press office" not in listed and channel.id not in listed
    # the lead sees its summary
    assert "press office" in say(running, LEAD, "list", OPS)
    # and the declarer may not act on it from outside
    refused(running, COMMS, "note INC-1 Anything new?", OPS, "Run this in INC-1's channel")


def test_someone_added_to_a_restricted_channel_by_hand_holds_none_of_its_roles(running):
    channel = declare(running, 1)
    assert running.driver.join(COMMS, channel.id, inviter=LEAD).ok
    wait_for(lambda: "member_joined" in running.kinds(1), what="the bot to hear the join")
    running.settle()
    for text in ("note From comms", "timeline", "status"):
        refused(running, COMMS, text, channel.id, "who hold one of its roles")


def test_close_waits_for_the_legal_steps_unless_forced(running):
    channel = declare(running, 1)
    assert "done" in say(running, SPEC, CONFIRM, channel.id)
    running.settle()
    reply = refused(running, LEAD, "close", channel.id, "ncmec-report", NCMEC_TITLE, "close anyway")
    assert "hold-review" not in reply  # its clock outlives close
    assert "closed" in say(running, LEAD, "close anyway Duplicate of INC-7, reported there", channel.id)
    running.settle()
    [closed] = events(running, 1, "closed")
    assert closed["actor"] == LEAD
    assert closed["data"]["forced"] is True
    assert closed["data"]["reason"] == "Duplicate of INC-7, reported there"
    assert closed["data"]["open_legal_steps"] == ["ncmec-report"]

    # the Close button: a modal saying which clocks stop; a reason is required
    second = declare(running, 2, summary="Second hash match")
    click(running, LEAD, second, "incident_close")
    view = open_view(running, LEAD, "incident_close")
    text = view_text(view)
    assert "these clocks stop" in text and CONFIRM_TITLE in text and "status-update reminder" in text
    assert "ncmec-report" in text
    assert input_block(view, "reason")["type"] == "input"
    before = len(running.timeline(2))
    bare = running.driver.submit_view(LEAD, view.id, {}, enforce_required=False)
    assert bare.ok and bare.errors and "reason" in bare.errors, bare
    running.settle()
    assert len(running.timeline(2)) == before and "closed" not in running.kinds(2)
    done = running.driver.submit_view(LEAD, view.id, {"reason": {"value": "Test report, no material"}})
    assert done.ok and not done.errors, done
    running.settle()
    [closed] = events(running, 2, "closed")
    assert closed["data"]["forced"] is True and closed["data"]["reason"] == "Test report, no material"
    assert closed["actor"] == LEAD


def test_undo_needs_a_reason_and_a_redo_opens_with_the_recorded_values(running):
    channel = declare(running, 1)
    here = channel.id
    assert "done" in say(running, SPEC, "done confirm case_id=CASE-42 category=B1 human_viewed=some", here)
    running.settle()
    refused(running, SPEC, "undo confirm", here, "Say why", "undo confirm REASON")
    refused(running, SPEC, "undo confirm    ", here, "Say why")
    assert "reopened" in say(running, SPEC, "undo confirm Wrong case id", here)
    [reopened] = events(running, 1, "step_reopened")
    assert reopened["actor"] == SPEC
    assert reopened["data"]["step"] == "confirm" and reopened["data"]["reason"] == "Wrong case id"
    running.settle()

    # Done again by button: the modal opens with what was recorded before
    wait_for(lambda: any(b.get("block_id") == "act:confirm" for b in running.ws.pinned_messages(here)[0].blocks),
             what="the Done button of confirm again")
    click(running, SPEC, channel, "step_done", "confirm")
    view = open_view(running, SPEC, "step_fields")
    assert input_block(view, "case_id")["element"].get("initial_value") == "CASE-42"
    assert input_block(view, "human_viewed")["element"].get("initial_option", {}).get("value") == "some"
    # the classification is private: never shown in Slack, so it is chosen again
    assert "initial_option" not in input_block(view, "category")["element"]
    redo = running.driver.submit_view(SPEC, view.id, {"case_id": {"value": "CASE-43"}, "category": {"value": "B1"}})
    assert redo.ok and not redo.errors, redo
    running.settle()
    second = events(running, 1, "step_done")[-1]
    assert second["data"]["values"] == {"case_id": "CASE-43", "category": "B1", "human_viewed": "some"}

    # the Undo button asks for the reason in a modal
    wait_for(lambda: any(b.get("block_id") == "step:confirm" and b.get("accessory")
                         for b in running.ws.pinned_messages(here)[0].blocks), what="the Undo button")
    click(running, SPEC, channel, "step_undo", "confirm")
    view = open_view(running, SPEC, "step_undo")
    assert CONFIRM_TITLE in view_text(view) and "first completed" in view_text(view)
    before = len(running.timeline(1))
    bare = running.driver.submit_view(SPEC, view.id, {}, enforce_required=False)
    assert bare.errors and "reason" in bare.errors, bare
    assert len(running.timeline(1)) == before
    assert running.driver.submit_view(SPEC, view.id, {"reason": {"value": "Classification disputed"}}).ok
    running.settle()
    reasons = [e["data"]["reason"] for e in events(running, 1, "step_reopened")]
    assert reasons == ["Wrong case id", "Classification disputed"]
    assert events(running, 1, "step_reopened")[-1]["actor"] == SPEC


def test_a_lead_may_name_an_incident_from_elsewhere(running):
    declare(running, 1)
    status = running.driver.command(LEAD, "status INC-1", channel=OPS)
    assert status.ok and status.message.text.startswith("INC-1 · Confirmed CSAM report"), status.message.text
    assert CONFIRM_TITLE in str(status.message.blocks)
    refused(running, SPEC, "status INC-1", OPS, "Run this in INC-1's channel", LEADS_ONLY)
    refused(running, SPEC, "note INC-1 From ops", OPS, "Run this in INC-1's channel")
    assert "timeline" in say(running, LEAD, "note INC-1 Called NCMEC from the ops room", OPS)
    [note] = events(running, 1, "note")
    assert note["actor"] == LEAD and note["text"] == "Called NCMEC from the ops room"
    # a lead in another incident's channel naming this one is refused: it is not that channel's
    second = declare(running, 2, summary="Second hash match")
    refused(running, LEAD, "severity INC-1 sev2", second.id, "That names INC-1, but this is INC-2's channel",
            numbers=(1, 2))
    # (a note is free text: in INC-2's channel, `note INC-1 …` is a note on INC-2 that mentions INC-1)


# -- an undo and a redo in the review --------------------------------------------------------

@dataclass
class Redone:
    """What an undo and a redo leave: the timeline, the review and its Markdown."""

    events: list[dict]
    review: object
    md: str

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["kind"] == kind]


_REDONE: dict[str, Redone] = {}


def _undo_and_redo(clock, sandbox, db_url) -> Redone:
    """confirm done at T0, reopened a minute later, done again a minute after that."""
    running = make_bot(sandbox, db_url, start_scheduler=False)
    running.core.dispatcher.inline = True
    try:
        channel = declare(running, 1)
        say(running, SPEC, CONFIRM, channel.id)
        running.settle()
        clock.move_to(datetime.now(UTC) + timedelta(minutes=1))
        say(running, SPEC, "undo confirm Wrong case id", channel.id)
        running.settle()
        clock.move_to(datetime.now(UTC) + timedelta(minutes=1))
        say(running, SPEC, "done confirm case_id=CASE-882 category=A1 human_viewed=all", channel.id)
        running.settle()
        assert running.kinds(1).count("step_done") == 2 and running.kinds(1).count("step_reopened") == 1
        review = build_review(running.core, 1)
        return Redone(running.timeline(1), review, export.render(review, "md"))
    finally:
        running.core.dispatcher.drain(5)
        running.server.stop()


@pytest.fixture
def redone(request, db_url) -> Redone:
    """One undo-and-redo per database, shared by the tests that read its review (with time
    frozen but ticking, moved a minute at a time by freezegun)."""
    key = request.node.callspec.params["db_url"]
    if key not in _REDONE:
        with freeze_time(datetime.now(UTC), tick=True) as clock:
            _REDONE[key] = _undo_and_redo(clock, request.getfixturevalue("sandbox"), db_url)
    return _REDONE[key]


def _at(event) -> datetime:
    return datetime.strptime(event["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _near(a: datetime, b: datetime) -> bool:
    return abs(a.astimezone(UTC) - b.astimezone(UTC)) < timedelta(seconds=5)


def test_t0_is_the_first_confirmation_after_an_undo_and_a_redo(redone):
    first, second = redone.of("step_done")
    assert _at(second) - _at(first) > timedelta(seconds=90)
    t0 = redone.review.t0
    assert t0 is not None and _near(t0, _at(first)), (t0, first["at"], second["at"])
    t0_line = next(line for line in redone.md.splitlines() if line.startswith("- T0"))
    assert _at(first).strftime("%Y-%m-%d %H:%M") in t0_line, t0_line


def test_each_clock_of_the_report_step_is_listed_once_after_a_redo(redone):
    rows = [row for row in clock_rows(redone.review) if row.step_id == "ncmec-report"]
    assert sorted(row.label for row in rows) == ["page legal", "remind owner"]
    first = _at(redone.of("step_done")[0])
    after = {"remind owner": timedelta(hours=4), "page legal": timedelta(hours=24)}
    for row in rows:  # counted from the first confirmation: an Undo buys no time
        assert _near(row.due_at - after[row.label], first), row
    table = redone.md.split("## Legal clocks", 1)[1]
    assert len(re.findall(rf"^\| {re.escape(NCMEC_TITLE)} \|", table, re.MULTILINE)) == 2


def test_no_clock_is_listed_twice_after_a_redo(redone):
    rows = [(r.step_id, r.label, r.clock_from) for r in clock_rows(redone.review)]
    assert len(rows) == len(set(rows)), rows
    table = redone.md.split("## Legal clocks", 1)[1]
    assert len(re.findall(rf"^\| {re.escape(CONFIRM_TITLE)} \|", table, re.MULTILINE)) == 1
