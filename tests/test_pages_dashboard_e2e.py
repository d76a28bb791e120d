"""The Slack experience at 3 a.m., end to end through the sandbox: page messages updated in place
(escalated, acknowledged, withdrawn at close or when the overdue step is done; one DM per person
per page, across a bot restart too),
status updates seen by the channel and a content-free line in the announcement channel, the
pinned checklist as the dashboard (ids, clocks, values, private values hidden, a menu), and the
channel's bookmarks. Time is frozen (ticking) and moved by hand; the scheduler is not started.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import yaml
from freezegun import freeze_time
from sqlalchemy import select

from bot.db.models import Page, PageMessage, Timer
from sandbox.blockkit import find_element
from tests.conftest import make_bot
from tests.support import DEMO_CONFIG, wait_for

pytestmark = pytest.mark.e2e

LEAD, SPEC, LEGAL, GC = "U0LEAD001", "U0SPEC001", "U0LEGAL01", "U0GC00001"
ANNOUNCE = "C0GENERAL"
SUMMARY = "Hash match on upload 8812"
SECRET = "uploader-handle-zx81"  # words of an update: the channel sees them, the announcement never


@pytest.fixture
def clock():
    with freeze_time(datetime.now(UTC), tick=True) as frozen:
        yield frozen


def config(tmp_path):
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    # Level 2 pages Legal again and the general counsel: Legal's DM is updated, not sent twice.
    data["roles"]["legal"]["escalation"] = [{"notify": ["slack"], "ack_within": "15m"},
                                            {"notify": ["slack"], "ack_within": "15m", "users": [LEGAL, GC]}]
    data["announcements"] = {"channel": ANNOUNCE}
    path = tmp_path / "safeguard.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def start(sandbox, db_url, tmp_path):
    running = make_bot(sandbox, db_url, config=config(tmp_path), start_scheduler=False)
    running.core.dispatcher.inline = True
    return running


def stop(running):
    running.core.dispatcher.drain(5)
    running.server.stop()


@pytest.fixture
def bot(clock, sandbox, db_url, tmp_path):
    running = start(sandbox, db_url, tmp_path)
    yield running
    stop(running)


def advance(bot, clock, delta):
    clock.move_to(datetime.now(UTC) + delta)
    bot.core.dispatcher.tick()
    bot.settle()


def declare(bot):
    assert bot.driver.command(LEAD, f"declare csam-report {SUMMARY}").ok
    channel = bot.provisioned(1)
    wait_for(lambda: bot.ws.pins(channel.id), what="the pinned checklist")
    bot.settle()
    return channel


def run(bot, user, text, channel):
    result = bot.driver.command(user, text, channel=channel.id)
    assert result.ok, result
    bot.settle()
    return result.message.text if result.message else ""


def page_dms(bot, user):
    return [m for m in bot.ws.dms(user) if any(b.get("block_id") == "page_head" for b in m.blocks or [])]


def has_button(message) -> bool:
    return find_element(message.blocks, "page_ack", None, None) is not None


def shown(message) -> str:
    return message.text + json.dumps(message.blocks or [], ensure_ascii=False)


def page_posts(bot, channel):
    return [m for m in bot.ws.messages(channel.id) if m.source == "api" and m.text.startswith(":pager: Paging")]


def checklist(bot, channel):
    return bot.ws.pinned_messages(channel.id)[0]


def announced(bot):
    return [m.text for m in bot.ws.messages(ANNOUNCE) if m.source == "api" and "INC-1" in m.text]


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_page_messages_change_in_place_and_one_dm_per_person_per_page(clock, sandbox, db_url, tmp_path):
    bot = start(sandbox, db_url, tmp_path)
    try:
        channel = declare(bot)
        run(bot, LEAD, "page legal Counsel needed on the report", channel)
        [dm] = page_dms(bot, LEGAL)
        assert has_button(dm) and "level 1" in shown(dm)
        [post1] = page_posts(bot, channel)
        assert "level 1" in post1.text and "Acknowledge with the button" in post1.text
    finally:
        stop(bot)  # a restart between level 1 and level 2: the DM's record is in the database

    bot = start(sandbox, db_url, tmp_path)
    try:
        advance(bot, clock, timedelta(minutes=15, seconds=1))
        # Level 2 pages Legal again and the counsel: Legal's one DM now says level 2, still with the button.
        [dm] = page_dms(bot, LEGAL)
        assert has_button(dm) and "Escalated to level 2" in shown(dm) and dm.edited
        [gc] = page_dms(bot, GC)
        assert has_button(gc) and "level 2" in shown(gc)
        post1, post2 = page_posts(bot, channel)
        assert "Escalated to level 2" in post1.text and post1.edited
        assert "level 2" in post2.text and f"Level 1 (<@{LEGAL}>) went unanswered for 15m" in post2.text
        kinds = [e["text"] for e in bot.timeline(1) if e["kind"] == "page_sent"]
        assert any("DM already sent was updated" in t for t in kinds)

        assert bot.driver.click(GC, bot.ws.dm_channel(GC).id, gc.ts, "page_ack").ok
        wait_for(lambda: "page_acked" in bot.kinds(1), what="the acknowledgement")
        bot.settle()
        for message in (*page_dms(bot, LEGAL), *page_dms(bot, GC)):
            assert not has_button(message), shown(message)
            assert f"Acknowledged* by <@{GC}>" in shown(message) and "after 15 min" in shown(message)
        for post in page_posts(bot, channel):
            assert f"Acknowledged* by <@{GC}>" in post.text and "Acknowledge with" not in post.text
        assert not [m for m in bot.ws.messages(channel.id) if "acknowledged the page" in m.text]  # no extra post

        # A second page, then close: its DM says withdrawn, its button gone; still one DM per page.
        run(bot, LEAD, "page legal Second opinion", channel)
        assert has_button(page_dms(bot, LEGAL)[-1])
        run(bot, LEAD, "close anyway test ends here", channel)
        bot.settle()
        legal = page_dms(bot, LEGAL)
        assert len(legal) == 2 and len(page_dms(bot, GC)) == 1
        assert "Withdrawn" in shown(legal[1]) and not has_button(legal[1])
        assert "Acknowledged" in shown(legal[0])
        with bot.core.db.read() as session:
            rows = session.scalars(select(PageMessage).order_by(PageMessage.id)).all()
            assert sorted(r.key for r in rows if r.page_id == 1) == ["channel:1", "channel:2", f"dm:{GC}",
                                                                     f"dm:{LEGAL}"]
            assert all(r.ts for r in rows)
            assert [p.state for p in session.scalars(select(Page).order_by(Page.id))] == ["acked", "withdrawn"]
    finally:
        stop(bot)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_status_updates_announcements_checklist_dashboard_and_bookmarks(bot, clock):
    channel = declare(bot)
    [line] = announced(bot)
    assert "Confirmed CSAM report" in line and "SEV1" in line and "declared" in line
    assert LEAD not in line and "lead: restricted" in line  # a restricted incident names no lead there
    assert SUMMARY not in line and "8812" not in line

    run(bot, SPEC, "done confirm case_id=CASE-881 category=A1 human_viewed=all", channel)
    advance(bot, clock, timedelta(seconds=2))  # the checklist redraw folds clicks within a second
    board = wait_for(lambda: "CASE-881" in shown(checklist(bot, channel)) and checklist(bot, channel),
                     what="the checklist with the recorded values")
    text = shown(board)
    for step in ("`confirm`", "`remove`", "`ncmec-report`", "`preservation-hold`"):
        assert step in text, step
    assert "~Specialist confirms and classifies the material~" in text  # done: struck through
    assert "Did a person view each file?: `all`" in text  # a recorded value is shown …
    assert "`A1`" not in text and "Industry classification" in text  # … a private one only named
    ncmec = next(b for b in board.blocks if b.get("block_id") == "step:ncmec-report")["text"]["text"]
    assert "remind the owner <!date^" in ncmec and "page Legal on-call <!date^" in ncmec and "*law*" in ncmec
    remove = next(b for b in board.blocks if b.get("block_id") == "step:remove")["text"]["text"]
    assert "internal target" in remove
    clocks = next(b for b in board.blocks if b.get("block_id") == "clocks")["text"]["text"]
    assert "Next deadline" in clocks and "Next status update due <!date^" in clocks
    assert find_element(board.blocks, "incident_menu", None, "incident") is not None

    # Bookmarks: the review page and the playbook page.
    marks = wait_for(lambda: len(bot.ws.bookmarks(channel.id)) == 2 and bot.ws.bookmarks(channel.id),
                     what="the bookmarks")
    titles = [b.title for b in marks]
    assert titles == ["INC-1 review", "Playbook: Confirmed CSAM report"]
    page = httpx.get(marks[1].link, timeout=5)
    assert page.status_code == 200 and "ncmec-report" in page.text and "18 U.S.C. 2258A" in page.text
    assert httpx.get(marks[0].link, timeout=5).status_code == 403  # links are personal: the page says how

    # A status update through the form opened by the checklist's button.
    assert bot.driver.click(LEAD, channel.id, checklist(bot, channel).ts, "incident_update").ok
    view = wait_for(lambda: next((v for v in bot.ws.open_views(LEAD) if v.callback_id == "status_update"), None),
                    what="the update form")
    submitted = bot.driver.submit_view(LEAD, view.id, {"state": {"value": f"Report drafted; {SECRET} banned"},
                                                       "next": {"value": "File the report"},
                                                       "next_update": {"value": "2h"}})
    assert submitted.ok, submitted
    advance(bot, clock, timedelta(seconds=2))
    [update] = [m for m in bot.ws.messages(channel.id) if "status update" in m.text and SECRET in m.text]
    assert "*Next steps:* File the report" in update.text and update.source == "api"  # everyone sees it
    [event] = [e for e in bot.timeline(1) if e["kind"] == "status_update"]
    assert event["actor"] == LEAD and event["data"]["every"] == "2h"
    with bot.core.db.read() as session:
        [status] = session.scalars(select(Timer).where(Timer.kind == "status", Timer.state == "pending")).all()
        assert timedelta(minutes=119) < status.due_at - datetime.now(UTC) <= timedelta(hours=2)
    lines = announced(bot)
    assert len(lines) == 2 and "status update posted" in lines[1]
    assert all(SECRET not in t and SUMMARY not in t and "File the report" not in t for t in lines)

    # The reminder, once due, points to the update command.
    advance(bot, clock, timedelta(hours=2, seconds=1))
    [asked] = [m for m in bot.ws.messages(channel.id) if "time for a status update" in m.text]
    assert "`/incident update`" in asked.text

    # The report is a day late: Legal is paged for it; filing it withdraws the page (in place).
    advance(bot, clock, timedelta(hours=22))
    [dm] = page_dms(bot, LEGAL)
    assert has_button(dm) and "overdue" in shown(dm)
    run(bot, LEAD, "done ncmec-report report_id=123456", channel)
    [dm] = page_dms(bot, LEGAL)
    assert not has_button(dm) and "Withdrawn*: “File the CyberTipline report and log its ID” was done" in shown(dm)
    with bot.core.db.read() as session:
        assert session.get(Page, 1).state == "withdrawn"
        assert not session.scalars(select(Timer).where(Timer.kind == "escalate", Timer.state == "pending")).all()

    # The menu's Assign and Page open their forms and do what the commands do.
    assert bot.driver.click(LEAD, channel.id, checklist(bot, channel).ts, "incident_menu", "1:assign").ok
    view = wait_for(lambda: next((v for v in bot.ws.open_views(LEAD) if v.callback_id == "incident_assign"), None),
                    what="the assign form")
    assert bot.driver.submit_view(LEAD, view.id, {"role": {"value": "legal"}, "user": {"value": GC}}).ok
    bot.settle()
    assert any(e["data"].get("user") == GC for e in bot.timeline(1) if e["kind"] == "role_assigned")
    assert bot.driver.click(LEAD, channel.id, checklist(bot, channel).ts, "incident_menu", "1:page").ok
    view = wait_for(lambda: next((v for v in bot.ws.open_views(LEAD) if v.callback_id == "incident_page"), None),
                    what="the page form")
    assert bot.driver.submit_view(LEAD, view.id, {"role": {"value": "deputy"}, "reason": {"value": "Watch"}}).ok
    bot.settle()
    assert page_dms(bot, "U0DEPU001")

    # Resolve from the checklist's menu; then close: both announced, content-free.
    board = checklist(bot, channel)
    assert bot.driver.click(LEAD, channel.id, board.ts, "incident_menu", "1:resolve").ok
    view = wait_for(lambda: next((v for v in bot.ws.open_views(LEAD) if v.callback_id == "incident_resolve"), None),
                    what="the resolve form")
    assert bot.driver.submit_view(LEAD, view.id, {"summary": {"value": f"Done; {SECRET}"}}).ok
    bot.settle()
    assert "resolved" in bot.kinds(1)
    run(bot, LEAD, "close anyway test ends here", channel)
    lines = announced(bot)
    assert [w for w in ("declared", "status update posted", "resolved", "closed") if any(w in t for t in lines)] == [
        "declared", "status update posted", "resolved", "closed"]
    assert all(SECRET not in t and SUMMARY not in t for t in lines)
