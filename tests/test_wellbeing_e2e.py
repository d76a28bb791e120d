"""Responder wellbeing end to end, through the sandbox, on SQLite and PostgreSQL: `viewed` writes
the custody event and nothing about duration anywhere a channel member can read; `wellbeing`
answers only the caller; `assign ROLE` picks by load; someone over the limit or on a break is
refused, and `anyway` is recorded; the lead's notice carries no figures.

Time is frozen (ticking) at a fixed instant, so a day never turns over mid-test in anyone's zone."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import yaml
from freezegun import freeze_time
from sqlalchemy import select

from bot.db.models import Exposure, Incident
from bot.timeline import export
from bot.timeline.build import build_review
from tests.conftest import make_bot
from tests.support import DEMO_CONFIG, wait_for

pytestmark = pytest.mark.e2e

LEAD, SPEC, SPEC2, PIA, LEGAL = "U0LEAD001", "U0SPEC001", "U0SPEC002", "U0POLICY1", "U0LEGAL01"
ROLE = "child_safety_specialist"
NOON_IN_LOS_ANGELES = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)  # Chloe (LA) and Dev (Kolkata) mid-day/-night


@pytest.fixture
def bot(sandbox, db_url, tmp_path):
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["roles"][ROLE]["users"] = [SPEC, SPEC2, PIA]  # three people share the viewing
    path = tmp_path / "safeguard.yaml"
    path.write_text(yaml.safe_dump(config))
    with freeze_time(NOON_IN_LOS_ANGELES, tick=True):
        running = make_bot(sandbox, db_url, config=path, start_scheduler=False)
        try:
            yield running
        finally:
            running.core.dispatcher.drain(5)
            running.server.stop()


def declare(bot):
    assert bot.driver.command(LEAD, "declare csam-report Hash match on upload 8812").ok
    channel = bot.provisioned(1)
    wait_for(lambda: bot.ws.pins(channel.id), what="the pinned checklist")
    bot.settle()
    return channel


def say(bot, user: str, text: str, channel: str):
    result = bot.driver.command(user, text, channel=channel)
    assert result.ok, result
    bot.settle()
    return result.message


def readable_by_members(bot, channel, user: str) -> str:
    """Everything a member of the channel other than `user` can read there."""
    with bot.ws.lock:
        ch = bot.ws.channel(channel.id)
        posted = [str(m.text) + str(m.blocks) + str(m.attachments) for m in ch.messages]
        others = [m.text for m in ch.ephemeral if m.ephemeral_to != user]
    return "\n".join(posted + others)


def test_viewed_writes_the_custody_fact_and_no_duration_where_members_read(bot, caplog):
    channel = declare(bot)
    with caplog.at_level(logging.INFO):
        reply = say(bot, SPEC, "viewed 37m items=12 kind=video", channel.id)
    assert reply.is_ephemeral and reply.ephemeral_to == SPEC
    assert "12 items" in reply.text and "37m" in reply.text  # the person's own figure, to them alone
    [event] = [e for e in bot.timeline(1) if e["kind"] == "content_viewed"]
    assert event["actor"] == SPEC and event["data"] == {"user": SPEC, "items": 12}
    assert "12 items" in event["text"]
    with bot.core.db.read() as session:
        [row] = session.scalars(select(Exposure))
    assert (row.user_id, row.incident_id, row.seconds, row.kind, row.items) == (SPEC, 1, 2220, "video", 12)

    # Nothing about the duration (or kind) anywhere a channel member can read.
    status = say(bot, LEAD, "status", channel.id)
    assert say(bot, LEAD, "timeline md", channel.id).text
    bot.settle()
    exports = [export.render(build_review(bot.core, 1), fmt) for fmt in export.FORMATS]
    metrics = httpx.get(bot.server.url + "/metrics").text
    for text in [readable_by_members(bot, channel, SPEC), status.text + str(status.blocks), *exports, metrics,
                 caplog.text]:
        for secret in ("37m", "37 min", "2220", "video"):
            # as a word: a hash on the timeline may hold the digits 2220 by chance
            assert not re.search(rf"(?<![0-9a-f]){re.escape(secret)}(?![0-9a-f])", text), secret
    assert any("content_viewed" in text for text in exports)


def test_viewed_bounds_its_input_and_acts_only_for_the_caller(bot):
    channel = declare(bot)
    for text in ("viewed 13h", "viewed 1h items=100001", "viewed 1h kind=pdf", "viewed soon", "viewed 1h user=U0SPEC002"):
        assert say(bot, SPEC, text, channel.id).text.startswith(":no_entry:"), text
    assert "content_viewed" not in bot.kinds(1)
    # An outsider cannot log viewing for the incident.
    with bot.ws.lock:
        bot.ws.channel(channel.id).members.append("U0OUTSID1")  # added by hand, holds no role
    assert say(bot, "U0OUTSID1", "viewed 10m", channel.id).text.startswith(":no_entry:")
    assert "content_viewed" not in bot.kinds(1)


def test_wellbeing_answers_only_the_caller(bot):
    channel = declare(bot)
    say(bot, SPEC, "viewed 50m items=3", channel.id)
    before = readable_by_members(bot, channel, SPEC)
    reply = say(bot, SPEC, "wellbeing", channel.id)
    assert reply.is_ephemeral and reply.ephemeral_to == SPEC
    assert "Today: 50m of 4h 00m" in reply.text and "This week: 50m of 16h 00m" in reply.text
    assert "America/Los_Angeles" in reply.text and "/incident break" in reply.text
    assert readable_by_members(bot, channel, SPEC) == before
    # From anywhere (the ops channel), and the break is recorded.
    took = say(bot, SPEC, "break", "C0OPS0001")
    assert took.ephemeral_to == SPEC and "15m" in took.text
    assert "on a break until" in say(bot, SPEC, "wellbeing", "C0OPS0001").text
    # Someone else asking sees their own, empty, figures.
    other = say(bot, LEGAL, "wellbeing", "C0OPS0001")
    assert other.ephemeral_to == LEGAL and "Today: 0s of 4h 00m" in other.text and "50m" not in other.text


def test_assign_picks_by_load_refuses_over_the_limit_and_records_anyway(bot):
    channel = declare(bot)
    [first] = [e for e in bot.timeline(1) if e["kind"] == "role_assigned" and e["data"]["role"] == ROLE]
    assert first["data"]["user"] == SPEC  # the primary, at declaration
    with bot.core.db.tx() as session:  # Dev viewed for another case earlier (a review tool logged it)
        assert session.get(Incident, 1)
        session.add(Exposure(user_id=SPEC2, incident_id=1, seconds=1800, kind="image", items=5,
                             at=datetime.now(UTC) - timedelta(minutes=30)))

    # No person named: among the others configured, the least exposure this week (Pia, none).
    picked = say(bot, LEAD, f"assign {ROLE}", channel.id)
    assert f"<@{PIA}>" in picked.text and "least viewing this week" in picked.text
    assert "30m" not in picked.text and "1800" not in picked.text
    [auto] = [e for e in bot.timeline(1) if e["kind"] == "role_assigned" and e["data"]["user"] == PIA]
    assert auto["data"]["picked"] is True and "override" not in auto["data"]

    # Chloe reaches the daily limit: she and the lead are told, the lead without figures.
    say(bot, SPEC, "viewed 4h items=900", channel.id)
    bot.settle()
    mine = wait_for(lambda: [m.text for m in bot.ws.dms(SPEC) if "limit" in m.text], what="Chloe's nudge")
    assert "reached today's viewing limit" in mine[-1]
    notice = wait_for(lambda: [m.text for m in bot.ws.dms(LEAD) if "viewing work" in m.text], what="the notice")
    assert len(notice) == 1 and f"<@{SPEC}>" in notice[0] and "no more viewing work today" in notice[0]
    assert "4h" not in notice[0] and "900" not in notice[0]

    # Naming her now is refused, plainly, and writes nothing.
    before = len(bot.timeline(1))
    refused = say(bot, LEAD, f"assign {ROLE} <@{SPEC}>", channel.id)
    assert refused.text.startswith(":no_entry:") and "reached today's viewing limit" in refused.text
    assert "anyway" in refused.text
    bot.settle()
    assert len(bot.timeline(1)) == before
    # `anyway` overrides, and the timeline says so.
    assert f"<@{SPEC}>" in say(bot, LEAD, f"assign {ROLE} <@{SPEC}> anyway", channel.id).text
    override = [e for e in bot.timeline(1) if e["kind"] == "role_assigned" and e["data"].get("override")]
    assert len(override) == 1 and override[0]["data"]["user"] == SPEC and override[0]["actor"] == LEAD

    # Someone on a break is refused too; `assign ROLE` then skips them and Chloe (at the limit).
    say(bot, SPEC2, "break 30m", "C0OPS0001")
    on_break = say(bot, LEAD, f"assign {ROLE} <@{SPEC2}>", channel.id)
    assert on_break.text.startswith(":no_entry:") and "is on a break" in on_break.text
    assert f"<@{PIA}>" in say(bot, LEAD, f"assign {ROLE}", channel.id).text


def test_the_step_that_asks_who_viewed_logs_viewing_and_the_review_shows_hours_per_role(bot):
    """`done confirm … viewed=113m` and the confirm step's form log the specialist's viewing with
    the step: the custody event on the timeline, the duration in the ledger only (never a step
    value, a channel, an export); the review shows time on the incident per role, never per
    person; `wellbeing` gives the caller their own hours."""
    channel = declare(bot)
    fields = "case_id=CASE-7 category=A1"
    refused = say(bot, SPEC, f"done confirm {fields} human_viewed=none viewed=113m", channel.id)
    assert refused.text.startswith(":no_entry:") and "answered `none`" in refused.text
    assert "step_done" not in bot.kinds(1) and "content_viewed" not in bot.kinds(1)

    done = say(bot, SPEC, f"done confirm {fields} human_viewed=all viewed=113m viewed_items=7 viewed_kind=audio",
               channel.id)
    assert done.ephemeral_to == SPEC and "Your viewing is logged" in done.text
    [step] = [e for e in bot.timeline(1) if e["kind"] == "step_done"]
    assert step["data"]["values"] == {"case_id": "CASE-7", "category": "A1", "human_viewed": "all"}
    [custody] = [e for e in bot.timeline(1) if e["kind"] == "content_viewed"]
    assert custody["actor"] == SPEC and custody["data"] == {"user": SPEC, "items": 7} and custody["seq"] > step["seq"]

    # Again through the form (after an Undo): it offers the viewing inputs, checks them against
    # the answer, and writes the same two things.
    say(bot, SPEC, "undo confirm Wrong case id", channel.id)
    assert bot.driver.command(SPEC, "done confirm", channel=channel.id).ok
    view = wait_for(lambda: next((v for v in reversed(bot.ws.open_views(SPEC)) if v.callback_id == "step_fields"),
                                 None), what="the step's form")
    assert {"viewed", "viewed_items", "viewed_kind"} <= {b.get("block_id") for b in view.blocks}
    form = {"case_id": {"value": "CASE-8"}, "category": {"value": "A1"}, "human_viewed": {"value": "none"},
            "viewed": {"value": "41m"}, "viewed_items": {"value": "3"}}
    wrong = bot.driver.submit_view(SPEC, view.id, form)
    assert wrong.ok and "viewed" in (wrong.errors or {})
    form["human_viewed"] = {"value": "some"}
    assert not bot.driver.submit_view(SPEC, view.id, form).errors
    bot.settle()
    with bot.core.db.read() as session:
        ledger = sorted((r.seconds, r.items, r.kind) for r in session.scalars(select(Exposure)))
    assert ledger == [(2460, 3, None), (6780, 7, "audio")]
    steps_done = [e for e in bot.timeline(1) if e["kind"] == "step_done"]
    assert steps_done[-1]["data"]["values"] == {"case_id": "CASE-8", "category": "A1", "human_viewed": "some"}
    assert [e["data"]["items"] for e in bot.timeline(1) if e["kind"] == "content_viewed"] == [7, 3]

    # Nothing about how long (or what kind) anywhere a channel member can read.
    status = say(bot, LEAD, "status", channel.id)
    exports = [export.render(build_review(bot.core, 1), fmt) for fmt in export.FORMATS]
    for text in [readable_by_members(bot, channel, SPEC), status.text + str(status.blocks), *exports]:
        for secret in ("113m", "6780", "1h 53m", "41m", "2460", "audio", "viewed="):
            assert not re.search(rf"(?<![0-9a-f]){re.escape(secret)}(?![0-9a-f])", text), secret
    # The review: time per role (and the total), not per person.
    review = exports[export.FORMATS.index("md")]
    section = review.split("## Time on the incident, per role")[1].split("\n## ")[0]
    assert "| Child-safety specialist | 1 |" in section and "| All responders |" in section
    assert not re.search(r"U0[A-Z0-9]{7}", section)
    assert "Time on the incident, per role" in exports[export.FORMATS.index("html")]

    mine = say(bot, SPEC, "wellbeing", channel.id)
    assert mine.ephemeral_to == SPEC and "Your time on incidents" in mine.text and "This week: " in mine.text
