"""Every clock of the csam-report playbook through a real bot and the sandbox, with time moved
by freezegun and the scheduler not started: the test says when the dispatcher looks.

Time is frozen but ticking (so HTTP timeouts, Bolt's ack polling and `wait_for` still work) and
jumped forward by `advance()`; the bot, the sandbox, the signatures and the SMTP and
PagerDuty stand-ins all live in this process and see the same clock.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from freezegun import freeze_time
from sqlalchemy import select

from bot.db.models import Incident, Page, Task, Timer
from bot.paging import service as pages
from sandbox.blockkit import find_element
from sandbox.pagerduty import PagerDutyStandIn, validate_event
from tests.clocks_support import pager_env, smtp_server, write_config
from tests.conftest import make_bot
from tests.support import DEMO_CONFIG, wait_for

pytestmark = pytest.mark.e2e

LEAD, DEPUTY, SPEC, LEGAL, GC = "U0LEAD001", "U0DEPU001", "U0SPEC001", "U0LEGAL01", "U0GC00001"
CONFIRM = "done confirm case_id=CASE-881 category=A1 human_viewed=all"


# -- fixtures -----------------------------------------------------------------------------

@pytest.fixture
def clock():
    with freeze_time(datetime.now(UTC), tick=True) as frozen:
        yield frozen


@pytest.fixture(autouse=True)
def batches_fire_whole(request, caplog):
    """Timers fire in batches; the one-by-one fallback is only for a timer that fails."""
    yield
    if "fails_to_fire" not in request.node.name:
        assert not [r for r in caplog.records if "firing them one by one" in r.getMessage()]


@pytest.fixture
def pd():
    with PagerDutyStandIn() as standin:
        yield standin


@pytest.fixture
def smtp():
    with smtp_server() as box:
        yield box


def start_bot(clock, sandbox, db_url, pd, smtp, tmp_path, changes=None):
    config = write_config(tmp_path / "org", events_url=pd.url, changes=changes)
    running = make_bot(sandbox, db_url, config=config, start_scheduler=False, env=pager_env(smtp))
    running.core.dispatcher.inline = True
    return running


@pytest.fixture
def bot(clock, sandbox, db_url, pd, smtp, tmp_path):
    running = start_bot(clock, sandbox, db_url, pd, smtp, tmp_path)
    try:
        yield running
    finally:
        stop(running)


def stop(running) -> None:
    running.core.dispatcher.drain(5)  # inline passes run in Bolt's listener threads
    running.server.stop()


# -- helpers ------------------------------------------------------------------------------

def advance(bot, clock, delta: timedelta) -> None:
    """Move time forward and let the bot do everything that came due."""
    # (freezegun's ticking `tick()` forgets the real time elapsed since the last move: it could
    # move time backwards; `move_to(now + delta)` cannot.)
    clock.move_to(datetime.now(UTC) + delta)
    bot.core.dispatcher.tick()
    bot.settle()


def declare(bot, playbook: str = "csam-report"):
    result = bot.driver.command(LEAD, f"declare {playbook} Hash match on upload 8812")
    assert result.ok, result

    def provisioned() -> bool:  # the command acks before it declares
        with bot.core.db.read() as session:
            incident = session.get(Incident, 1)
            return incident is not None and incident.provisioned_at is not None

    wait_for(provisioned, what="the incident to be provisioned")
    bot.settle()
    channel = wait_for(lambda: bot.ws.channel_by_name(f"inc-1-{playbook}"), what="the incident channel")
    wait_for(lambda: bot.ws.pins(channel.id), what="the pinned checklist")
    return channel


def run(bot, user: str, text: str, channel) -> str:
    result = bot.driver.command(user, text, channel=channel.id)
    assert result.ok, result
    bot.settle()
    return result.message.text if result.message else ""


def events(bot, kind: str) -> list[dict]:
    return [e for e in bot.timeline(1) if e["kind"] == kind]


def posts(bot, channel, marker: str) -> list:
    return [m for m in bot.ws.messages(channel.id) if m.source == "api" and marker in m.text]


def status_asks(bot, channel) -> int:
    """How many status updates the bot has asked for in the channel."""
    return len(posts(bot, channel, "time for a status update"))


def page_dms(bot, user: str) -> list:
    """The page DMs `user` has (with or without their Acknowledge button: see `ack_buttons`)."""
    return [m for m in bot.ws.dms(user) if any(b.get("block_id") == "page_head" for b in m.blocks or [])]


def ack_buttons(bot, user: str) -> list:
    return [m for m in bot.ws.dms(user) if find_element(m.blocks, "page_ack", None, None)]


def timers(bot, **where) -> list[Timer]:
    with bot.core.db.read() as session:
        query = select(Timer).order_by(Timer.id)
        for name, value in where.items():
            query = query.where(getattr(Timer, name) == value)
        return list(session.scalars(query))


def confirmed(bot, clock):
    channel = declare(bot)
    run(bot, SPEC, CONFIRM, channel)
    return channel


def escalate_to_level_2(bot, clock, channel) -> None:
    advance(bot, clock, timedelta(hours=24, seconds=1))
    advance(bot, clock, timedelta(minutes=15, seconds=1))
    assert [e["data"]["to_level"] for e in events(bot, "page_escalated")] == [2]


# -- reminders ----------------------------------------------------------------------------

def test_reminder_four_hours_after_confirm_mentions_the_owner(bot, clock):
    channel = confirmed(bot, clock)
    [armed] = timers(bot, step_id="ncmec-report", kind="remind")
    [done] = [e for e in events(bot, "step_done") if e["data"]["step"] == "confirm"]
    assert armed.due_at - datetime.fromisoformat(done["at"].replace("Z", "+00:00")) == pytest.approx(
        timedelta(hours=4), abs=timedelta(seconds=1))

    advance(bot, clock, timedelta(hours=3, minutes=59))
    assert not posts(bot, channel, "File the CyberTipline report")

    advance(bot, clock, timedelta(minutes=1, seconds=1))
    [reminder] = posts(bot, channel, "File the CyberTipline report")
    assert f"<@{LEAD}>" in reminder.text  # the owner (incident lead) is mentioned
    assert reminder.unfurl_links is False and reminder.unfurl_media is False
    sent = [e for e in events(bot, "reminder_sent") if e["data"].get("step") == "ncmec-report"]
    assert len(sent) == 1 and sent[0]["data"]["users"] == [LEAD]
    fired = [e for e in events(bot, "timer_fired") if e["data"]["timer"] == armed.id]
    assert len(fired) == 1 and 0 <= fired[0]["data"]["late_seconds"] < 5

    advance(bot, clock, timedelta(hours=1))  # fired once, never again
    assert len(posts(bot, channel, "File the CyberTipline report")) == 1


# -- pages and escalation -----------------------------------------------------------------

def test_page_at_24h_dms_legal_then_escalates_through_pagerduty_and_email(bot, clock, pd, smtp):
    channel = confirmed(bot, clock)
    advance(bot, clock, timedelta(hours=23, minutes=59))
    assert not page_dms(bot, LEGAL) and not events(bot, "page_opened")

    advance(bot, clock, timedelta(minutes=1, seconds=1))
    [dm] = page_dms(bot, LEGAL)
    assert "INC-1" in dm.text and dm.unfurl_links is False
    assert "Hash match" not in dm.text  # the summary may hold identifiers: never in a page
    [mention] = posts(bot, channel, ":pager: Paging")
    assert f"<@{LEGAL}>" in mention.text and "level 1" in mention.text
    wait_for(lambda: smtp.rcpts(), what="the level-1 email")
    assert smtp.rcpts() == ["lena@example.org"]
    assert pd.events == []  # level 1 is Slack and email only
    assert not page_dms(bot, GC)

    advance(bot, clock, timedelta(minutes=14))
    assert not events(bot, "page_escalated")

    advance(bot, clock, timedelta(minutes=1, seconds=1))
    [escalated] = events(bot, "page_escalated")
    assert escalated["data"]["to_level"] == 2
    assert len(page_dms(bot, GC)) == 1 and len(page_dms(bot, LEGAL)) == 1
    [trigger] = pd.events
    assert validate_event(trigger) == []
    assert trigger["event_action"] == "trigger" and trigger["dedup_key"] == "safeguard-page-1"
    assert pd.incidents == {"safeguard-page-1": "triggered"}
    wait_for(lambda: len(smtp.rcpts()) == 2, what="the level-2 email")
    assert smtp.rcpts()[1] == "gabe@example.org"
    sent = {(e["data"]["level"], e["data"]["backend"]) for e in events(bot, "page_sent")}
    assert sent == {(1, "slack"), (1, "email"), (2, "slack"), (2, "pagerduty"), (2, "email")}

    advance(bot, clock, timedelta(minutes=15, seconds=1))
    [unanswered] = events(bot, "page_unanswered")
    assert unanswered["data"]["levels"] == 2
    [told] = posts(bot, channel, "Nobody acknowledged the page")
    assert f"<@{LEAD}>" in told.text and f"<@{DEPUTY}>" in told.text
    with bot.core.db.read() as session:
        assert session.get(Page, 1).state == "unanswered"

    assert not ack_buttons(bot, GC) and not ack_buttons(bot, LEGAL)  # the DMs say it went unanswered
    assert "Unanswered" in page_dms(bot, GC)[0].text or "Unanswered" in str(page_dms(bot, GC)[0].blocks)

    advance(bot, clock, timedelta(hours=2))  # the ladder ends there
    assert len(pd.events) == 1 and len(page_dms(bot, GC)) == 1 and len(events(bot, "page_unanswered")) == 1


def test_ack_button_in_the_dm_stops_escalation_and_resolves_pagerduty(bot, clock, pd):
    channel = confirmed(bot, clock)
    escalate_to_level_2(bot, clock, channel)
    [dm] = page_dms(bot, GC)
    dm_channel = bot.ws.dm_channel(GC)
    clicked = bot.driver.click(GC, dm_channel.id, dm.ts, "page_ack")
    assert clicked.ok, clicked
    wait_for(lambda: events(bot, "page_acked"), what="the acknowledgement")  # acked before the work
    bot.settle()

    [acked] = events(bot, "page_acked")
    assert acked["actor"] == GC and acked["data"]["level"] == 2
    assert [e["event_action"] for e in pd.events] == ["trigger", "resolve"]
    assert pd.events[1]["dedup_key"] == "safeguard-page-1" and pd.incidents["safeguard-page-1"] == "resolved"
    assert [t.state for t in timers(bot, kind="escalate")] == ["fired", "cancelled"]
    assert posts(bot, channel, "Acknowledged* by")  # the page's channel posts, updated in place
    assert not ack_buttons(bot, GC) and not ack_buttons(bot, LEGAL)

    advance(bot, clock, timedelta(hours=1))
    assert not events(bot, "page_unanswered")
    assert len(page_dms(bot, GC)) == 1 and len(pd.events) == 2


def test_an_ack_while_the_pagerduty_trigger_is_in_flight_still_resolves_it(bot, clock, pd, monkeypatch):
    confirmed(bot, clock)
    advance(bot, clock, timedelta(hours=24, seconds=1))  # level 1: Slack and e-mail
    backend = bot.core.backends["pagerduty"]
    send = backend.send

    def acked_on_the_way(notice):  # the counsel acknowledges in Slack before PagerDuty has the trigger,
        pages.acknowledge(bot.core, GC, page_id=notice.page_id)
        with bot.core.db.tx() as session:  # and another worker runs the ack's resolve, which gets there first
            [task] = session.scalars(select(Task).where(Task.kind == "page_resolve", Task.state == "pending"))
            task.state = "done"
        backend.resolve(notice)
        send(notice)

    monkeypatch.setattr(backend, "send", acked_on_the_way)
    advance(bot, clock, timedelta(minutes=15, seconds=1))  # level 2: PagerDuty
    bot.settle()
    actions = [e["event_action"] for e in pd.events]
    assert actions[:2] == ["resolve", "trigger"] and actions[-1] == "resolve"
    assert pd.incidents == {"safeguard-page-1": "resolved"}


def test_ack_command_at_level_1_stops_escalation(bot, clock, pd, smtp):
    channel = confirmed(bot, clock)
    advance(bot, clock, timedelta(hours=24, seconds=1))
    assert page_dms(bot, LEGAL)
    answer = run(bot, LEGAL, "ack", channel)
    assert "Acknowledged page #1" in answer
    [acked] = events(bot, "page_acked")
    assert acked["actor"] == LEGAL and acked["data"]["level"] == 1

    advance(bot, clock, timedelta(hours=1))
    assert not events(bot, "page_escalated") and not page_dms(bot, GC) and pd.events == []
    assert "no open page" in run(bot, LEGAL, "ack", channel).lower()


def test_page_by_hand_then_ack(bot, clock, pd):
    channel = declare(bot)
    answer = run(bot, LEAD, "page legal Need a decision on disclosure", channel)
    assert "page #1" in answer
    [dm] = page_dms(bot, LEGAL)
    assert "Need a decision on disclosure" in dm.text
    clicked = bot.driver.click(LEGAL, bot.ws.dm_channel(LEGAL).id, dm.ts, "page_ack")
    assert clicked.ok
    wait_for(lambda: events(bot, "page_acked"), what="the acknowledgement")
    bot.settle()
    advance(bot, clock, timedelta(minutes=31))
    assert [e["kind"] for e in bot.timeline(1) if e["kind"].startswith("page_")] == [
        "page_opened", "page_sent", "page_sent", "page_acked"]  # slack + email, ack (an e-mail has no resolve)
    assert pd.events == []


def test_a_hand_pages_words_stay_in_slack(bot, clock, pd, smtp):
    channel = declare(bot)
    words = "user @jane_doe_2011 (Jane, 13) sent 4 images"
    run(bot, LEAD, f"page legal {words}", channel)
    [dm] = page_dms(bot, LEGAL)
    assert "jane_doe_2011" in dm.text  # inside Slack, to the person paged
    wait_for(lambda: smtp.messages, what="the page e-mail")
    mail = smtp.messages[0].get_content()
    assert "jane" not in mail.lower() and "paged by hand by a responder" in mail
    advance(bot, clock, timedelta(minutes=15, seconds=1))  # level 2: PagerDuty
    [trigger] = pd.events
    assert "jane" not in json.dumps(trigger).lower()
    assert trigger["payload"]["custom_details"]["reason"] == "paged by hand by a responder; see the incident channel"


def test_a_page_without_a_reason_mentions_who_paged(bot, clock):
    channel = declare(bot)
    run(bot, LEAD, "page legal", channel)
    [mention] = posts(bot, channel, ":pager: Paging")
    assert f"paged by <@{LEAD}>" in mention.text and "&lt;" not in mention.text
    [opened] = events(bot, "page_opened")
    assert opened["text"] == f"Paging Legal on-call by hand (<@{LEAD}>)" and opened["data"]["reason"] == ""


def test_only_the_people_paged_can_acknowledge(bot, clock):
    channel = declare(bot)
    run(bot, LEAD, "page Legal\u00a0Need a decision", channel)  # any case, any space
    assert "no open page is addressed to you" in run(bot, DEPUTY, "ack", channel).lower()  # a lead, not paged
    assert "no open page is addressed to you" in run(bot, LEAD, "ack", channel).lower()
    assert not events(bot, "page_acked")
    assert "Acknowledged page #1" in run(bot, LEGAL, "ack", channel)


def test_steps_can_still_be_worked_after_resolve(bot, clock):
    channel = confirmed(bot, clock)
    run(bot, LEAD, "resolve Content removed; report pending", channel)
    assert "done" in run(bot, LEAD, "done ncmec-report report_id=123456", channel)
    assert [t for t in timers(bot, step_id="hold-review") if t.state == "pending"]  # the hold's clock started
    assert not [t for t in timers(bot, step_id="ncmec-report") if t.state == "pending"]
    run(bot, LEAD, "close anyway closing early in this test", channel)
    assert "closed" in run(bot, LEAD, "undo ncmec-report wrong report id", channel)


# -- status updates -----------------------------------------------------------------------

def test_status_update_every_30_minutes_for_sev1_until_resolved(bot, clock):
    channel = declare(bot)
    [first] = timers(bot, kind="status")
    assert first.due_at - first.armed_at == pytest.approx(timedelta(minutes=30), abs=timedelta(seconds=1))
    advance(bot, clock, timedelta(minutes=29))
    assert not status_asks(bot, channel)

    for n in (1, 2, 3):
        advance(bot, clock, timedelta(minutes=1 if n == 1 else 30))
        assert status_asks(bot, channel) == n
    [due] = posts(bot, channel, "time for a status update")[:1]
    assert f"<@{LEAD}>" in due.text and "every 30m" in due.text
    # the cadence holds: each reminder is due 30 minutes after the previous one was due
    fired = [t for t in timers(bot, kind="status") if t.state == "fired"]
    gaps = {(b.due_at - a.due_at) for a, b in zip(fired, fired[1:], strict=False)}
    assert gaps == {timedelta(minutes=30)}

    run(bot, LEAD, "resolve Contained", channel)
    assert [t.state for t in timers(bot, kind="status")][-1] == "cancelled"
    advance(bot, clock, timedelta(hours=2))
    assert status_asks(bot, channel) == 3


def test_status_update_cadence_follows_severity(bot, clock):
    channel = declare(bot)
    run(bot, LEAD, "severity sev2", channel)
    advance(bot, clock, timedelta(minutes=31))
    assert not status_asks(bot, channel)
    advance(bot, clock, timedelta(hours=1, minutes=30))
    assert status_asks(bot, channel) == 1
    run(bot, LEAD, "severity sev3", channel)  # no reminders for sev3 in the demo config
    advance(bot, clock, timedelta(hours=5))
    assert status_asks(bot, channel) == 1
    assert not [t for t in timers(bot, kind="status") if t.state == "pending"]


def test_a_severity_round_trip_does_not_push_the_status_update_back(bot, clock):
    channel = declare(bot)  # sev1: every 30 minutes
    advance(bot, clock, timedelta(minutes=25))
    run(bot, LEAD, "severity sev2", channel)
    advance(bot, clock, timedelta(minutes=1))
    run(bot, LEAD, "severity sev1", channel)
    advance(bot, clock, timedelta(minutes=4, seconds=5))  # 30 minutes after the declaration
    assert status_asks(bot, channel) == 1
    advance(bot, clock, timedelta(minutes=30))
    assert status_asks(bot, channel) == 2


def test_raising_to_sev1_after_an_hour_asks_for_a_status_update_at_once(bot, clock):
    channel = declare(bot)
    run(bot, LEAD, "severity sev3", channel)
    advance(bot, clock, timedelta(hours=1))
    run(bot, LEAD, "severity sev1", channel)
    advance(bot, clock, timedelta(seconds=2))
    assert status_asks(bot, channel) == 1


# -- preservation: the legal clock --------------------------------------------------------

def test_preservation_review_330_days_after_the_report_survives_close(bot, clock):
    channel = confirmed(bot, clock)
    run(bot, LEAD, "done ncmec-report report_id=123456", channel)
    [review] = timers(bot, step_id="hold-review")
    [report] = [e for e in events(bot, "step_done") if e["data"]["step"] == "ncmec-report"]
    reported_at = datetime.fromisoformat(report["at"].replace("Z", "+00:00"))
    assert review.kind == "remind" and review.target == "legal"
    assert review.due_at - reported_at == pytest.approx(timedelta(days=330), abs=timedelta(seconds=1))
    assert review.spec["basis"].startswith("law") and review.spec["outlives_close"] is True

    run(bot, LEGAL, "done preservation-hold hold_ref=HOLD-9", channel)
    run(bot, LEAD, "resolve Reported and preserved", channel)
    run(bot, LEAD, "close anyway closing early in this test", channel)
    wait_for(lambda: bot.ws.channel(channel.id).is_archived, what="the channel to be archived")
    pending = [t for t in timers(bot) if t.state == "pending"]
    assert [t.id for t in pending] == [review.id]  # everything else stopped with the incident
    [kept] = events(bot, "timer_kept")
    assert kept["data"]["timer"] == review.id
    cancelled = {e["data"]["timer"] for e in events(bot, "timer_cancelled")}
    assert review.id not in cancelled

    advance(bot, clock, timedelta(days=329, hours=23))
    assert not [e for e in events(bot, "timer_fired") if e["data"]["timer"] == review.id]
    advance(bot, clock, timedelta(hours=1, seconds=1))
    [sent] = [e for e in events(bot, "reminder_sent") if e["data"].get("step") == "hold-review"]
    assert sent["data"]["users"] == [LEGAL] and "direct message" in sent["text"]
    [dm] = [m for m in bot.ws.dms(LEGAL) if "Legal reviews the preservation hold" in m.text]
    assert "INC-1" in dm.text and f"<@{LEGAL}>" in dm.text


def test_preservation_review_posts_in_the_channel_while_the_incident_is_open(bot, clock):
    channel = confirmed(bot, clock)
    run(bot, LEAD, "done ncmec-report report_id=123456", channel)
    advance(bot, clock, timedelta(days=330, seconds=1))
    [reminder] = posts(bot, channel, "Legal reviews the preservation hold")
    assert f"<@{LEGAL}>" in reminder.text


def test_a_skipped_report_starts_no_preservation_clock(bot, clock):
    channel = confirmed(bot, clock)
    run(bot, LEAD, "skip ncmec-report Already reported under INC-3", channel)
    assert not [t for t in timers(bot, step_id="hold-review") if t.state == "pending"]
    run(bot, LEAD, "close anyway closing early in this test", channel)
    assert not [t for t in timers(bot) if t.state == "pending"] and not events(bot, "timer_kept")
    advance(bot, clock, timedelta(days=331))
    assert not [m for m in bot.ws.dms(LEGAL) if "preservation hold" in m.text]


def test_a_skipped_confirmation_still_starts_the_report_deadline(bot, clock):
    channel = declare(bot)
    run(bot, SPEC, "skip confirm Known hash, already classified A1 in the case", channel)
    due = {(t.kind, t.spec["after"]) for t in timers(bot, step_id="ncmec-report") if t.state == "pending"}
    assert due == {("remind", "4h"), ("page", "1d")}


def test_close_before_the_report_deadline_stops_its_reminders(bot, clock, pd):
    channel = confirmed(bot, clock)
    run(bot, LEAD, "close anyway closing early in this test", channel)
    assert not [t for t in timers(bot) if t.state == "pending"] and not events(bot, "timer_kept")
    before = len(bot.ws.dms(LEAD)) + len(bot.ws.dms(SPEC))
    advance(bot, clock, timedelta(hours=25))
    assert not events(bot, "reminder_sent") and not events(bot, "page_opened")
    assert len(bot.ws.dms(LEAD)) + len(bot.ws.dms(SPEC)) == before and not page_dms(bot, LEGAL)


# -- cancellation -------------------------------------------------------------------------

def test_done_and_skip_cancel_the_step_clocks(bot, clock, pd):
    channel = confirmed(bot, clock)
    advance(bot, clock, timedelta(minutes=30))
    run(bot, LEAD, "done ncmec-report report_id=123456", channel)
    run(bot, SPEC, "skip remove Already removed by the automated system", channel)
    states = {(t.step_id, t.kind, t.spec.get("after")): t.state for t in timers(bot)}
    assert states[("ncmec-report", "remind", "4h")] == "cancelled"
    assert states[("ncmec-report", "page", "1d")] == "cancelled"
    assert states[("remove", "remind", "1h")] == "cancelled"
    reasons = [e["text"] for e in events(bot, "timer_cancelled")]
    assert any("File the CyberTipline report" in r and "done" in r for r in reasons)
    assert any("Remove the content" in r and "skipped" in r for r in reasons)

    advance(bot, clock, timedelta(hours=25))
    assert not posts(bot, channel, "File the CyberTipline report")
    assert not posts(bot, channel, "Remove the content")
    assert not events(bot, "page_opened") and not page_dms(bot, LEGAL) and pd.events == []
    assert posts(bot, channel, "Share the hashes")  # a clock of another step still runs


def test_close_cancels_the_clocks_and_pending_escalation(bot, clock, pd):
    channel = confirmed(bot, clock)
    advance(bot, clock, timedelta(hours=24, seconds=1))
    assert page_dms(bot, LEGAL)
    run(bot, LEAD, "close anyway closing early in this test", channel)
    assert not [t for t in timers(bot) if t.state == "pending"]
    assert not events(bot, "timer_kept")  # no legal clock was running yet
    advance(bot, clock, timedelta(hours=2))
    assert not events(bot, "page_escalated") and not page_dms(bot, GC) and pd.events == []


def test_close_withdraws_open_and_unanswered_pages_and_resolves_them_on_pagerduty(bot, clock, pd):
    channel = confirmed(bot, clock)
    escalate_to_level_2(bot, clock, channel)  # page #1: PagerDuty triggered at level 2
    advance(bot, clock, timedelta(minutes=15, seconds=1))
    assert events(bot, "page_unanswered")
    run(bot, LEAD, "page legal Second opinion", channel)  # page #2: open, Slack and e-mail only
    assert pd.incidents == {"safeguard-page-1": "triggered"}

    run(bot, LEAD, "close anyway closing early in this test", channel)
    withdrawn = events(bot, "page_withdrawn")
    assert [(e["data"]["page"], e["data"]["was"], e["actor"]) for e in withdrawn] == [
        (1, "unanswered", LEAD), (2, "open", LEAD)]
    assert pd.incidents == {"safeguard-page-1": "resolved"}
    assert [e["data"]["backend"] for e in events(bot, "page_resolved")] == ["pagerduty"]
    with bot.core.db.read() as session:
        assert [p.state for p in session.scalars(select(Page).order_by(Page.id))] == ["withdrawn", "withdrawn"]
    advance(bot, clock, timedelta(hours=1))
    assert len(pd.events) == 2 and "no open page" in run(bot, LEGAL, "ack", channel).lower()
    # Nobody is left with a button to click: every DM of both pages says they were withdrawn
    # (one DM per person per page: Legal has one for each page).
    assert len(page_dms(bot, LEGAL)) == 2 and not ack_buttons(bot, LEGAL) and not ack_buttons(bot, GC)
    assert all("Withdrawn" in json.dumps(m.blocks) for m in page_dms(bot, LEGAL) + page_dms(bot, GC))


# -- a backend that keeps failing ---------------------------------------------------------

def test_failing_backend_falls_back_to_slack_and_tells_the_channel(clock, sandbox, db_url, pd, smtp, tmp_path):
    legal = {"label": "Legal on-call", "users": [LEGAL], "escalation": [
        {"notify": ["pagerduty"], "ack_within": "15m"}]}  # PagerDuty only: the Slack DM is the fallback
    roles = yaml.safe_load(DEMO_CONFIG.read_text())["roles"] | {"legal": legal}
    bot = start_bot(clock, sandbox, db_url, pd, smtp, tmp_path,
                    changes={"roles": roles, "delivery": {"max_attempts": 3, "first_retry": "1s"}})
    try:
        pd.fail_next(100, status=503)
        channel = confirmed(bot, clock)
        advance(bot, clock, timedelta(hours=24, seconds=1))
        assert not page_dms(bot, LEGAL)  # PagerDuty only, and it refuses
        for _ in range(3):
            advance(bot, clock, timedelta(seconds=10))
        [failed] = events(bot, "page_failed")
        assert failed["data"]["backend"] == "pagerduty"
        [dm] = page_dms(bot, LEGAL)
        assert "INC-1" in dm.text
        [told] = posts(bot, channel, "did not accept the page")
        assert "pagerduty" in told.text and "Slack instead" in told.text
        assert {(e["data"]["backend"]) for e in events(bot, "page_sent")} == {"slack"}
        with bot.core.db.read() as session:
            [task] = session.scalars(select(Task).where(Task.kind == "page_notify", Task.state == "dead")).all()
        assert task.payload["backend"] == "pagerduty" and task.attempts == 3
        assert pd.events == []
    finally:
        stop(bot)


def test_a_failing_e_mail_does_not_page_twice_on_slack(clock, sandbox, db_url, pd, tmp_path):
    # no SMTP server: level 1 of Legal is Slack and e-mail, and the e-mail cannot go out
    bot = start_bot(clock, sandbox, db_url, pd, None, tmp_path,
                    changes={"delivery": {"max_attempts": 2, "first_retry": "1s"}})
    try:
        channel = confirmed(bot, clock)
        advance(bot, clock, timedelta(hours=24, seconds=1))
        for _ in range(3):
            advance(bot, clock, timedelta(seconds=10))
        assert [e["data"]["backend"] for e in events(bot, "page_failed")] == ["email"]
        assert len(page_dms(bot, LEGAL)) == 1  # the level's own DM, not a second one
        [told] = posts(bot, channel, "did not accept the page")
        assert "paged by Slack DM too" in told.text
    finally:
        stop(bot)


def test_a_closed_channel_that_is_kept_says_closed_in_its_topic(clock, sandbox, db_url, pd, smtp, tmp_path):
    bot = start_bot(clock, sandbox, db_url, pd, smtp, tmp_path, changes={"archive_on_close": False})
    try:
        channel = declare(bot)
        run(bot, LEAD, "close anyway closing early in this test", channel)
        assert not bot.ws.channel(channel.id).is_archived
        assert "SEV1 · CLOSED" in bot.ws.channel(channel.id).topic["value"]
    finally:
        stop(bot)


# -- found while testing ------------------------------------------------------------------

def test_level_1_pages_whoever_holds_the_role_in_the_incident(bot, clock):
    channel = declare(bot, "imminent-harm")  # not restricted: its Legal role may go to anyone
    run(bot, LEAD, "assign legal <@U0EUCOUN1>", channel)
    run(bot, LEAD, "page legal Disclosure decision needed", channel)
    assert page_dms(bot, "U0EUCOUN1")  # the incident's Legal on-call
    assert page_dms(bot, LEGAL)  # and the level's users (the config's primary)
    [mention] = posts(bot, channel, ":pager: Paging")
    assert "<@U0EUCOUN1>" in mention.text


def test_a_report_undone_and_logged_again_keeps_one_clock_from_the_first_filing(bot, clock):
    channel = confirmed(bot, clock)
    run(bot, LEAD, "done ncmec-report report_id=111", channel)
    [first] = [e for e in events(bot, "step_done") if e["data"]["values"].get("report_id") == "111"]
    run(bot, LEAD, "undo ncmec-report wrong report id", channel)
    advance(bot, clock, timedelta(days=40))  # corrected weeks later: the year still runs from the filing
    run(bot, LEAD, "done ncmec-report report_id=222", channel)
    pending = [t for t in timers(bot, step_id="hold-review") if t.state == "pending"]
    assert len(pending) == 1  # one 330-day clock
    at = datetime.fromisoformat(first["at"].replace("Z", "+00:00"))
    assert pending[0].due_at - at == pytest.approx(timedelta(days=330), abs=timedelta(seconds=1))
    advance(bot, clock, timedelta(days=290, seconds=1))
    assert len(posts(bot, channel, "Legal reviews the preservation hold")) == 1


def test_a_report_undone_then_skipped_keeps_its_preservation_clock(bot, clock):
    channel = confirmed(bot, clock)
    run(bot, LEAD, "done ncmec-report report_id=111", channel)
    [review] = [t for t in timers(bot, step_id="hold-review") if t.state == "pending"]
    run(bot, LEAD, "undo ncmec-report wrong report id", channel)
    run(bot, LEAD, "skip ncmec-report Filed under INC-3 instead", channel)
    assert [t.id for t in timers(bot, step_id="hold-review") if t.state == "pending"] == [review.id]


def test_a_preservation_clock_armed_before_the_flag_existed_survives_close(bot, clock):
    channel = confirmed(bot, clock)
    run(bot, LEAD, "done ncmec-report report_id=111", channel)
    [review] = [t for t in timers(bot, step_id="hold-review") if t.state == "pending"]
    with bot.core.db.tx() as session:  # as a version without `outlives_close` armed it
        row = session.get(Timer, review.id)
        row.spec = {k: v for k, v in row.spec.items() if k != "outlives_close"}
    run(bot, LEAD, "close anyway closing early in this test", channel)
    assert [t.id for t in timers(bot) if t.state == "pending"] == [review.id]


def test_undo_and_redo_of_the_confirmation_does_not_push_the_report_deadline_back(bot, clock):
    channel = confirmed(bot, clock)
    due = {(t.kind, t.due_at) for t in timers(bot, step_id="ncmec-report") if t.state == "pending"}
    advance(bot, clock, timedelta(hours=2))
    run(bot, SPEC, "undo confirm classified too early", channel)
    run(bot, SPEC, CONFIRM, channel)
    assert {(t.kind, t.due_at) for t in timers(bot, step_id="ncmec-report") if t.state == "pending"} == due
    advance(bot, clock, timedelta(hours=2, seconds=1))  # 4 h after the first confirmation
    assert [e for e in events(bot, "reminder_sent") if e["data"].get("step") == "ncmec-report"]
    advance(bot, clock, timedelta(hours=20))
    assert len([e for e in events(bot, "reminder_sent") if e["data"].get("step") == "ncmec-report"]) == 1
    assert len(events(bot, "page_opened")) == 1  # the 24 h page, once


def test_a_clock_of_a_step_the_playbook_no_longer_has_still_fires(bot, clock):
    channel = confirmed(bot, clock)
    with bot.core.db.tx() as session:  # the playbook was edited after the clock was armed
        [remove] = session.scalars(select(Timer).where(Timer.step_id == "remove")).all()
        remove.step_id = "old-step"
    advance(bot, clock, timedelta(hours=1, seconds=1))
    [reminder] = posts(bot, channel, ":alarm_clock:")
    assert "INC-1" in reminder.text
    assert [t.state for t in timers(bot, step_id="old-step")] == ["fired"]


def test_a_timer_that_fails_to_fire_does_not_hold_up_the_others(bot, clock, monkeypatch):
    from bot.clocks import firing as timers_module

    channel = confirmed(bot, clock)
    real_open_page = timers_module.pages.open_page
    broken = {"on": True}

    def open_page(*args, **kwargs):
        if broken["on"]:
            raise RuntimeError("pager registry unavailable")
        return real_open_page(*args, **kwargs)

    monkeypatch.setattr(timers_module.pages, "open_page", open_page)
    with bot.core.db.tx() as session:  # the page comes due first, the reminder after it
        page_timer = session.scalars(select(Timer).where(Timer.kind == "page")).one()
        page_timer.due_at -= timedelta(hours=20, minutes=1)
    advance(bot, clock, timedelta(hours=4, seconds=1))
    assert posts(bot, channel, "File the CyberTipline report")  # not held up by the broken page
    assert [t.state for t in timers(bot, kind="page")] == ["pending"]  # never dropped
    for _ in range(3):
        advance(bot, clock, timedelta(seconds=5))
    [failed] = events(bot, "timer_failed")
    assert failed["data"]["timer"] == page_timer.id and "pager registry unavailable" in failed["data"]["error"]

    broken["on"] = False  # the cause is fixed: the page goes out, once
    advance(bot, clock, timedelta(seconds=10))
    assert [t.state for t in timers(bot, kind="page")] == ["fired"]
    assert len(page_dms(bot, LEGAL)) == 1 and len(events(bot, "page_opened")) == 1
