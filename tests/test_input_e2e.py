"""Forgiving input and the declaration's answers, end to end through the sandbox: did-you-mean for
steps, roles and playbooks; `declare PLAYBOOK` without a summary opens the form filled in; a
typed `@cole` is a mention; the confirmation links the channel with an Open button; a repeated
declaration asks whether to join the open incident (through the policy) or declare anyway."""

from __future__ import annotations

import json

import pytest

from bot.incidents.repeats import normalised, references
from tests.support import wait_for

pytestmark = pytest.mark.e2e

LEAD, SPEC, LEGAL, COMMS, EVA, PIA = "U0LEAD001", "U0SPEC001", "U0LEGAL01", "U0COMMS01", "U0EUCOUN1", "U0POLICY1"
OPS = "C0OPS0001"


def opened(ws, user: str):
    """The view just opened for `user` (views.open comes right after the ack), then closed again."""
    view = wait_for(lambda: ws.open_views(user) and ws.open_views(user)[-1], what="a modal")
    with ws.lock:
        ws.view_stacks[user] = []
    return view


def said(result) -> str:
    assert result.ok, result
    assert result.message is not None, result
    return result.message.text


def test_repeats_are_recognised_by_summary_or_reference():
    assert normalised("Hash match on  upload 8812!") == normalised("hash match on upload 8812")
    sha = "a" * 64
    assert references(f"Upload CASE-881 {sha.upper()} see https://x.example/u/1/ and INC-4") == {
        "case-881", sha, "x.example/u/1"}
    assert references("report 12 and case_ab") == set()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # input handling; no database behaviour
def test_input_is_forgiving_and_declarations_are_linked_and_deduplicated(running):
    driver, ws = running.driver, running.ws

    # did-you-mean for a playbook; the declaration's confirmation becomes a link with Open
    text = said(driver.command(LEAD, "declare csam-reprt Hash match on upload 8812"))
    assert "no playbook `csam-reprt`" in text and "Did you mean `csam-report`?" in text
    answer = driver.command(LEAD, "declare csam-report Hash match on upload 8812 CASE-881")
    confirmation = answer.message
    assert "INC-1" in confirmation.text
    channel = running.provisioned(1)
    running.settle()
    replaced = wait_for(lambda: (m := ws.message(OPS, confirmation.ts)) and f"<#{channel.id}>" in (m.text or "")
                        and m, what="the confirmation to link the channel")
    button = replaced.blocks[0]["accessory"]
    assert button["text"]["text"] == "Open" and f"channel={channel.id}" in button["url"]
    assert button["url"].startswith("https://slack.com/app_redirect?")
    assert len([m for m in ws.ephemeral(OPS, LEAD) if "INC-1" in (m.text or "")]) == 1  # replaced, not added
    assert driver.click(LEAD, OPS, replaced.ts, "open_channel").ok  # a link button is acked, nothing else

    # did-you-mean for steps (done / skip / undo) and roles (assign / page)
    for command, wrong, right in [("done confrim", "confrim", "confirm"),
                                  ("skip ncmec not needed", "ncmec", "ncmec-report"),
                                  ("undo confirn by mistake", "confirn", "confirm"),
                                  ("assign legl U0LEGAL01", "legl", "legal"),
                                  ("page lgal need a decision", "lgal", "legal")]:
        text = said(driver.command(LEAD, command, channel=channel.id))
        assert f"`{wrong}`" in text and f"Did you mean `{right}`?" in text, (command, text)
    assert "Steps: `confirm`" in said(driver.command(LEAD, "done zzzz", channel=channel.id))

    # `declare PLAYBOOK` without a summary, or with a bad severity: the form, filled in
    assert driver.command(SPEC, "declare Grooming").ok
    view = opened(ws, SPEC)
    blocks = {b["block_id"]: b for b in view.blocks}
    assert blocks["playbook"]["element"]["initial_option"]["value"] == "grooming"
    assert "initial_value" not in blocks["summary"]["element"]
    assert driver.command(SPEC, "declare viral-spread severity=9 Reupload wave 5521").ok
    view = opened(ws, SPEC)
    blocks = {b["block_id"]: b for b in view.blocks}
    assert blocks["summary"]["element"]["initial_value"] == "Reupload wave 5521"
    assert blocks["playbook"]["element"]["initial_option"]["value"] == "viral-spread"
    assert "initial_option" not in blocks["severity"]["element"]
    assert driver.command(SPEC, "declare viral-spread severity=2").ok  # a good severity is kept
    view = opened(ws, SPEC)
    assert {b["block_id"]: b for b in view.blocks}["severity"]["element"]["initial_option"]["value"] == "sev2"

    # a repeat of a restricted incident by someone outside its roles: asked, shown nothing of it
    question = driver.command(COMMS, "declare csam-report hash match on upload 8812 case-881").message
    assert "This looks like *INC-1*" in question.text and "Nothing was created" in question.text
    assert "Hash match" not in question.text and "<@" not in question.text  # no summary, no lead
    buttons = [e["text"]["text"] for e in question.blocks[1]["elements"]]
    assert buttons == ["Join INC-1", "Declare a new one anyway"]
    assert "INC-2" not in json.dumps([m.text for m in ws.ephemeral(OPS)])
    assert driver.click(COMMS, OPS, question.ts, "repeat_join").ok
    told = wait_for(lambda: (m := ws.message(OPS, question.ts)) and "restricted" in (m.text or "") and m,
                    what="the join answer")
    assert "not added" in told.text and COMMS not in ws.channel(channel.id).members
    assert "repeat_reported" in running.kinds(1)

    # a repeat by a shared link (the same material; a guessable id like CASE-990 would not do for a
    # private channel), by someone who may join: Join adds them to the channel
    assert driver.command(LEAD, "declare viral-spread Reuploads of https://cases.example/990 spreading").ok
    viral = running.provisioned(2)
    running.settle()
    question = driver.command(EVA, "declare viral-spread New wave, see http://cases.example/990/").message
    assert "same reference `cases.example/990`" in question.text and "Join INC-2" in json.dumps(question.blocks)
    assert "Reuploads of" not in question.text  # a private channel Eva is not in: nothing of it
    assert driver.click(EVA, OPS, question.ts, "repeat_join").ok
    wait_for(lambda: EVA in ws.channel(viral.id).members, what="Eva to be invited")
    assert f"<#{viral.id}>" in ws.message(OPS, question.ts).text
    assert "repeat_joined" in running.kinds(2)

    # the form asks too (the form closes; the question comes where it was opened)
    assert driver.command(SPEC, "declare").ok
    form = wait_for(lambda: ws.open_views(SPEC) and ws.open_views(SPEC)[-1], what="the declare form")
    submitted = driver.submit_view(SPEC, form.id, {"playbook": {"value": "viral-spread"},
                                                   "summary": {"value": "More of cases.example/990 (https://cases.example/990)"}})
    assert submitted.ok and not submitted.errors
    asked = wait_for(lambda: [m for m in ws.ephemeral(OPS, SPEC) if "This looks like *INC-2*" in (m.text or "")],
                     what="the form's question")
    assert "Join INC-2" in json.dumps(asked[-1].blocks)

    # a forged Join (a summary that repeats nothing) is refused by the core, nothing written
    from bot.errors import Forbidden
    from bot.incidents.repeats import join_repeat

    before = len(running.timeline(2))
    with pytest.raises(Forbidden, match="Only someone declaring INC-2 again"):
        join_repeat(running.core, incident_id=2, actor=PIA, playbook_id="viral-spread", summary="Let me in")
    assert len(running.timeline(2)) == before and PIA not in ws.channel(viral.id).members

    # … and "Declare a new one anyway" declares exactly what was given
    question = driver.command(LEGAL, "declare viral-spread reuploads of https://cases.example/990 SPREADING").message
    assert "the same summary" in question.text or "same reference" in question.text
    assert driver.click(LEGAL, OPS, question.ts, "repeat_declare").ok
    running.provisioned(3)
    assert running.timeline(3)[0]["data"]["summary"] == "reuploads of https://cases.example/990 SPREADING"

    # a typed @name is a mention, as Slack's client sends it (`<@U…|cole>`)
    text = said(driver.command(LEAD, "assign comms @Pia", channel=viral.id))
    assert "not a Slack user" not in text and f"<@{PIA}>" in text
    text = said(driver.command(LEAD, "assign comms @nobody-here", channel=viral.id))
    assert "`@nobody-here` is not a Slack user" in text
