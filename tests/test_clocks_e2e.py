"""The clocks end to end, in real time: the real APScheduler fires a page from a playbook with
second-long timers; the DM reaches Legal in the sandbox, PagerDuty (the stand-in) gets a valid
Events v2 trigger, an email reaches a real SMTP server, and the acknowledgement stops it all."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import yaml
from sqlalchemy import select

from bot.db.models import Timer
from sandbox.blockkit import find_element
from sandbox.pagerduty import PagerDutyStandIn, validate_event
from tests.clocks_support import CLOCK_PLAYBOOKS, pager_env, smtp_server, write_config
from tests.conftest import make_bot
from tests.support import DEMO_CONFIG, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LEAD, LEGAL, GC = "U0LEAD001", "U0LEGAL01", "U0GC00001"


def page_dms(running, user):
    """`user`'s page DMs (acknowledged ones too: their button is gone, the DM stays)."""
    return [m for m in running.ws.dms(user) if any(b.get("block_id") == "page_head" for b in m.blocks or [])]


def test_scheduler_pages_legal_escalates_and_the_ack_stops_it(sandbox, db_url, tmp_path):
    roles = yaml.safe_load(DEMO_CONFIG.read_text())["roles"]
    roles["legal"]["escalation"] = [
        {"notify": ["slack", "email"], "ack_within": "1s"},
        {"notify": ["slack", "pagerduty", "email"], "ack_within": "2s", "users": [GC]},
    ]
    with PagerDutyStandIn() as pd, smtp_server() as smtp:
        config = write_config(tmp_path / "org", events_url=pd.url, changes={"roles": roles})
        running = make_bot(sandbox, db_url, config=config, playbooks=CLOCK_PLAYBOOKS, env=pager_env(smtp))
        try:
            assert running.bot.clockwork.scheduler.running
            declared = running.driver.command(LEAD, "declare clock-drill Drill of the clocks")
            assert declared.ok, declared
            channel = wait_for(lambda: running.ws.channel_by_name("inc-1-clock-drill"), what="the channel")

            # 1 s: the owner is reminded in the channel
            reminder = wait_for(lambda: [m for m in running.ws.messages(channel.id) if ":alarm_clock:" in m.text],
                                what="the reminder")[0]
            assert f"<@{LEAD}>" in reminder.text

            # 2 s: Legal is paged by DM (with an Acknowledge button) and by email
            [dm] = wait_for(lambda: page_dms(running, LEGAL), what="the page DM to Legal")
            assert "INC-1" in dm.text and dm.unfurl_links is False
            wait_for(lambda: smtp.rcpts(), what="the level-1 email")
            assert smtp.rcpts()[0] == "lena@example.org"

            # 3 s: nobody acknowledged: level 2 pages the general counsel, also on PagerDuty
            [gc_dm] = wait_for(lambda: page_dms(running, GC), what="the level-2 DM")
            [trigger] = wait_for(lambda: list(pd.events), what="the PagerDuty trigger")
            assert validate_event(trigger) == []
            assert trigger["event_action"] == "trigger" and trigger["dedup_key"] == "safeguard-page-1"
            assert trigger["routing_key"] == pager_env(None)["PD_ROUTING_KEY"]
            assert trigger["payload"]["severity"] in ("critical", "error", "warning", "info")
            assert "Drill of the clocks" not in str(trigger)  # the summary never leaves Slack
            wait_for(lambda: "gabe@example.org" in smtp.rcpts(), what="the level-2 email")
            message = smtp.messages[-1]
            assert "INC-1" in message["Subject"]

            # the general counsel acknowledges from the DM: escalation stops, PagerDuty resolves
            clicked = running.driver.click(GC, running.ws.dm_channel(GC).id, gc_dm.ts, "page_ack")
            assert clicked.ok, clicked
            wait_for(lambda: pd.incidents.get("safeguard-page-1") == "resolved", what="the PagerDuty resolve")
            assert [e["event_action"] for e in pd.events] == ["trigger", "resolve"]
            with running.core.db.read() as session:
                escalations = session.scalars(select(Timer).where(Timer.kind == "escalate").order_by(Timer.id)).all()
            assert [t.state for t in escalations] == ["fired", "cancelled"]
            # past the moment level 2 would have run out: nothing more
            time.sleep(max(0.0, (escalations[-1].due_at - datetime.now(UTC)).total_seconds()) + 0.5)
            kinds = running.kinds(1)
            assert "page_unanswered" not in kinds and kinds.count("page_escalated") == 1
            assert kinds.count("page_acked") == 1
            assert len(page_dms(running, GC)) == 1 and len(page_dms(running, LEGAL)) == 1
            wait_for(lambda: not any(find_element(m.blocks, "page_ack", None, None)
                                     for m in page_dms(running, GC) + page_dms(running, LEGAL)),
                     what="the Acknowledge buttons to leave the DMs")
            assert len(pd.events) == 2 and len(smtp.messages) == 2
            late = [e["data"]["late_seconds"] for e in running.timeline(1) if e["kind"] == "timer_fired"]
            assert len(late) == 3 and max(late) < 1.0, late  # remind, page, escalate: on time
        finally:
            running.server.stop()
