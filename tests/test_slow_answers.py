"""A command whose work is held up (a busy database) is still acked within Slack's 3 seconds:
"working on it" rides on the ack, the real answer follows on the response_url, and the work is
done exactly once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from bot.incidents import lifecycle
from tests.conftest import make_bot
from tests.support import wait_for

pytestmark = pytest.mark.e2e

LEAD = "U0LEAD001"


@pytest.fixture
def quick_deadline(sandbox, db_url):
    handle = make_bot(sandbox, db_url, ack_deadline=1.0)
    try:
        yield handle
    finally:
        handle.server.stop()


def held_up(bot, request: Callable[[], Any]):
    """Send `request` while another writer blocks every write to incidents until it is answered
    (SQLite: the one writer; PostgreSQL: the table locked against row locks and inserts)."""
    release, holding = threading.Event(), threading.Event()

    def hold() -> None:
        with bot.core.db.tx() as session:
            if not bot.core.db.is_sqlite:
                session.execute(text("LOCK TABLE incidents IN EXCLUSIVE MODE"))
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert holding.wait(5)
    try:
        return request()
    finally:
        release.set()
        holder.join(10)


def command(bot, channel, line: str):
    return lambda: bot.driver.command(LEAD, line, channel=channel.id)


def declared(bot, summary: str):
    assert bot.driver.command(LEAD, f"declare csam-report {summary}").ok
    channel = bot.provisioned(1)
    bot.settle()
    return channel


def test_a_held_up_command_is_acked_in_time_and_answered_later(quick_deadline):
    bot = quick_deadline
    channel = declared(bot, "Hash match 4242")
    result = held_up(bot, command(bot, channel, "note Call with the reporter at 03:10"))
    assert result.ok and not result.timed_out and result.elapsed < 2.5
    assert "Working on it" in result.message.text

    answer = wait_for(lambda: [m for m in bot.ws.ephemeral(channel.id, LEAD) if "Added to INC-1" in m.text],
                      what="the answer on the response_url")
    assert len(answer) == 1
    notes = [e for e in bot.timeline(1) if e["kind"] == "note"]
    assert [n["text"] for n in notes] == ["Call with the reporter at 03:10"]


def test_a_held_up_command_that_fails_says_why_later(quick_deadline):
    bot = quick_deadline
    channel = declared(bot, "Hash match 4343")
    lifecycle.resolve(bot.core, 1, LEAD, "Reported")
    bot.settle()
    result = held_up(bot, command(bot, channel, "resolve Again"))
    assert result.ok and "Working on it" in result.message.text
    wait_for(lambda: [m for m in bot.ws.ephemeral(channel.id, LEAD) if "already resolved" in m.text],
             what="the refusal on the response_url")
    assert [e["kind"] for e in bot.timeline(1)].count("resolved") == 1


def test_a_quick_command_answers_on_the_ack_itself(quick_deadline):
    bot = quick_deadline
    result = bot.driver.command(LEAD, "help")
    assert result.ok and "Working on it" not in result.message.text and "`declare`" in result.message.text


def test_a_modal_declaration_closes_at_once_while_the_database_is_busy(quick_deadline):
    bot = quick_deadline
    assert bot.driver.command(LEAD, "declare").ok
    view = wait_for(lambda: bot.ws.open_views(LEAD), what="the declare modal")[-1]
    result = held_up(bot, lambda: bot.driver.submit_view(LEAD, view.id, {
        "playbook": {"value": "csam-report"}, "summary": {"value": "Hash match 4444"}}))
    assert result.ok and not result.timed_out and not result.errors
    assert result.view is None  # closed: nothing invites a second submission
    wait_for(lambda: [m for m in bot.ws.ephemeral("C0OPS0001", LEAD) if "INC-1" in m.text],
             what="the confirmation")
    bot.provisioned(1)
    bot.settle()
    with bot.core.db.read() as session:
        assert session.scalar(text("SELECT count(*) FROM incidents")) == 1
