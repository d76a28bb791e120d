"""Helpers of the role-policy tests: declaring, typing and clicking as someone, and forging the
requests Slack itself would never send (a command from a channel the user is not in, a button
whose value names another incident)."""

from __future__ import annotations

import copy
from typing import Any

from sandbox import payloads
from sandbox.blockkit import find_element
from tests.support import wait_for

LEAD, DEPUTY = "U0LEAD001", "U0DEPU001"
SPEC, SPEC2 = "U0SPEC001", "U0SPEC002"
LEGAL, COMMS, OUTSIDER, GC = "U0LEGAL01", "U0COMMS01", "U0OUTSID1", "U0GC00001"
OPS, GENERAL = "C0OPS0001", "C0GENERAL"
CONFIRM = "done confirm case_id=CASE-881 category=A1 human_viewed=all"
CONFIRM_TITLE = "Specialist confirms and classifies the material"
NCMEC_TITLE = "File the CyberTipline report and log its ID"


def declare(running, number: int, user: str = LEAD, summary: str = "Hash match on upload 8812"):
    """Declare csam-report as `user` from the ops channel; returns INC-`number`'s sandbox channel
    once it is set up and the bot is idle."""
    result = running.driver.command(user, f"declare csam-report {summary}", channel=OPS)
    assert result.ok, result
    channel = running.provisioned(number)
    wait_for(lambda: running.ws.pins(channel.id), what=f"INC-{number}'s pinned checklist")
    running.settle()
    return channel


def say(running, user: str, text: str, channel: str) -> str:
    """`/incident text` as `user` in `channel`; the ephemeral answer's text."""
    result = running.driver.command(user, text, channel=channel)
    assert result.ok, result
    return result.message.text if result.message else ""


def events(running, number: int, kind: str) -> list[dict[str, Any]]:
    return [e for e in running.timeline(number) if e["kind"] == kind]


def refused(running, user: str, text: str, channel: str, *names: str, numbers=(1,), forged: bool = False) -> str:
    """Run a command that must be refused: the answer starts with :no_entry:, says each of `names`,
    and nothing new reaches the timelines of `numbers`, even once the bot is idle."""
    before = {n: len(running.timeline(n)) for n in numbers}
    reply = forged_command(running, user, channel, text) if forged else say(running, user, text, channel)
    assert reply.startswith(":no_entry:"), (text, reply)
    for name in names:
        assert name in reply, (text, name, reply)
    running.settle()
    assert {n: len(running.timeline(n)) for n in numbers} == before, (text, reply)
    return reply


def forged_command(running, user: str, channel_id: str, text: str) -> str:
    """`/incident text` as `user` in a channel they are not in (Slack would not send it)."""
    ws = running.ws
    with ws.lock:
        channel = ws.channel(channel_id)
        form = payloads.command_form(
            ws, user=user, channel=channel, command="/incident", text=text,
            response_url=ws.mint_response_url(running.sandbox.base_url, channel=channel.id, user=user,
                                              kind="command"),
            trigger_id=ws.mint_trigger(user))
    result = running.driver.send_form(form)
    assert result.ok, result
    return result.body.get("text", "") if isinstance(result.body, dict) else str(result.body or "")


def checklist(running, channel):
    return running.ws.pinned_messages(channel.id)[0]


def block_of(action_id: str, step: str | None) -> str:
    if action_id == "incident_close":
        return "incident"
    return f"act:{step}" if action_id in ("step_done", "step_skip") else f"step:{step}"


def click(running, user: str, channel, action_id: str, step: str | None = None):
    message = checklist(running, channel)
    result = running.driver.click(user, channel.id, message.ts, action_id, block_id=block_of(action_id, step))
    assert result.ok, result
    return result


def forged_click(running, user: str, channel, action_id: str, block_id: str, value: str):
    """A click on the pinned checklist of `channel` whose button value was changed to `value`."""
    ws = running.ws
    with ws.lock:
        message = checklist(running, channel)
        block, element = find_element(message.blocks, action_id, None, block_id)
        element = copy.deepcopy(element)
        element["value"] = value
        payload = payloads.block_actions_for_message(
            ws, user=user, channel=channel, message=message, block=block, element=element, value=None,
            trigger_id=ws.mint_trigger(user),
            response_url=ws.mint_response_url(running.sandbox.base_url, channel=channel.id, user=user,
                                              kind="block_actions", message_ts=message.ts))
    return running.driver.send_interaction(payload)


def no_entries(running, channel, user: str) -> list[str]:
    return [m.text for m in running.ws.ephemeral(channel.id, user) if m.text.startswith(":no_entry:")]


def click_refused(running, user: str, channel, action_id: str, step: str | None, *names: str,
                  numbers=(1,)) -> str:
    """Click a checklist button that must be refused: a :no_entry: ephemeral (on the response_url)
    naming `names`, no modal, nothing on the timelines."""
    before = {n: len(running.timeline(n)) for n in numbers}
    seen = len(no_entries(running, channel, user))
    click(running, user, channel, action_id, step)
    reply = wait_for(lambda: no_entries(running, channel, user)[seen:], what=f"the refusal of {action_id}")[0]
    for name in names:
        assert name in reply, (action_id, name, reply)
    running.settle()
    assert not running.ws.open_views(user)
    assert {n: len(running.timeline(n)) for n in numbers} == before, (action_id, reply)
    return reply


def open_view(running, user: str, callback_id: str):
    return wait_for(lambda: next((v for v in reversed(running.ws.open_views(user)) if v.callback_id == callback_id),
                                 None), what=f"the {callback_id} modal")


def view_text(view) -> str:
    return " ".join(str((b.get("text") or {}).get("text", "")) for b in view.blocks)


def input_block(view, block_id: str) -> dict[str, Any]:
    return next(b for b in view.blocks if b.get("block_id") == block_id)
