"""`safeguard serve` in Socket Mode (SLACK_APP_TOKEN set): the bot opens the sandbox's socket
through `apps.connections.open`, and commands, modals and events arrive as envelopes on it, as
Slack sends them to an app behind a firewall. Its HTTP port then refuses /slack/events."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from bot.timeline.build import load_events
from tests.clocks_support import BotProcess, pager_env, side_core
from tests.support import DEMO_CONFIG, REPO, wait_for

pytestmark = pytest.mark.e2e

LEAD, SPEC = "U0LEAD001", "U0SPEC001"
PLAYBOOKS = REPO / "playbooks"


def socket_env(sandbox, db_url: str, app_token: str) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": sandbox.bot_token, "SLACK_APP_TOKEN": app_token, "SLACK_SIGNING_SECRET": "",
        "SLACK_API_URL": sandbox.api_url, "DATABASE_URL": db_url, "SAFEGUARD_CONFIG": str(DEMO_CONFIG),
        "SAFEGUARD_PLAYBOOKS": str(PLAYBOOKS), "PORT": "0", **pager_env(None),
    }


@pytest.fixture
def socket_bot(sandbox, db_url, tmp_path):
    if not db_url.startswith("sqlite"):
        from bot.db.engine import Database

        database = Database(db_url)
        database.upgrade()
        database.dispose()
    sandbox.set_bot_url(None)
    sandbox.use_socket_mode()
    bot = BotProcess(socket_env(sandbox, db_url, sandbox.app_token), tmp_path / "bot.log").wait_ready()
    try:
        yield bot
    finally:
        bot.stop()


def kinds(db_url: str, number: int) -> list[str]:
    core = side_core(db_url, DEMO_CONFIG, PLAYBOOKS)
    try:
        with core.db.read() as session:
            return [e.kind for e in load_events(session, number)]
    finally:
        core.db.dispose()


def test_commands_modals_and_events_arrive_over_the_socket(sandbox, db_url, socket_bot):
    ws = sandbox.state
    assert sandbox.socket_mode.connected == 1
    opened = [c for c in sandbox.calls_of("apps.connections.open") if c.ok]
    assert len(opened) == 1

    declared = sandbox.driver.command(LEAD, "declare csam-report Hash match over the socket")
    assert declared.ok and not declared.timed_out, declared.error
    channel = wait_for(lambda: ws.channel_by_name("inc-1-csam-report"), 15, what="INC-1's channel")
    wait_for(lambda: channel.pins, 15, what="the pinned checklist")
    wait_for(lambda: LEAD in channel.members and SPEC in channel.members, 15, what="the invites")
    assert channel.is_private

    # a modal: the command opens it, the view_submission envelope's ack carries the answer
    assert sandbox.driver.command(LEAD, "declare").ok
    view = wait_for(lambda: ws.open_views(LEAD), what="the declare modal")[-1]
    empty = sandbox.driver.submit_view(LEAD, view.id, {"playbook": {"value": "grooming"},
                                                       "summary": {"value": "  "}})
    assert empty.errors and "summary" in empty.errors  # response_action=errors in the ack payload
    submitted = sandbox.driver.submit_view(LEAD, view.id, {"playbook": {"value": "grooming"},
                                                           "summary": {"value": "Adult contacting a minor"}})
    assert submitted.ok and not submitted.errors
    wait_for(lambda: ws.channel_by_name("inc-2-grooming"), 15, what="INC-2's channel")

    # an Events API envelope: 📌 on a message adds it to the timeline
    message = sandbox.driver.post_as(SPEC, channel.id, "Confirmed: two files, category A1").message
    assert sandbox.driver.react(LEAD, channel.id, message.ts, "pushpin").ok
    wait_for(lambda: "note" in kinds(db_url, 1), 15, what="the 📌 note on the timeline")

    # a slash command in the incident channel, answered in the ack
    status = sandbox.driver.command(LEAD, "status", channel=channel.id)
    assert status.ok and "INC-1" in json.dumps(status.message.blocks)


def test_http_is_refused_and_the_bot_reconnects_when_slack_asks(sandbox, socket_bot):
    # no signing secret in Socket Mode: the HTTP endpoint must not take unsigned (or forged) requests
    form = "command=%2Fincident&text=declare+csam-report+Forged&user_id=U0LEAD001&channel_id=C0OPS0001"
    for headers in ({}, {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=00"}):
        answer = httpx.post(socket_bot.events_url, content=form, timeout=5,
                            headers={"Content-Type": "application/x-www-form-urlencoded", **headers})
        assert answer.status_code == 401
    assert sandbox.state.channel_by_name("inc-1-csam-report") is None

    assert sandbox.socket_mode.refresh() == 1  # Slack's "disconnect: refresh_requested"
    wait_for(lambda: sandbox.socket_mode.connections_opened >= 2, 15, what="a second connection")
    # the new connection is open and the old one closed (slack_sdk's client acks nothing while
    # it winds the old one down, for up to its 3-second receive timeout)
    wait_for(lambda: sandbox.socket_mode.connected == sandbox.socket_mode.open_connections == 1, 15,
             what="the new connection to replace the old")
    declared = sandbox.driver.command(LEAD, "declare csam-report After the refresh")
    assert declared.ok, declared.error
    wait_for(lambda: sandbox.state.channel_by_name("inc-1-csam-report"), 15, what="INC-1's channel")


def test_a_refused_app_token_is_a_clear_error(sandbox, tmp_path):
    bot = BotProcess(socket_env(sandbox, f"sqlite:///{tmp_path / 'sg.db'}", "xapp-1-wrong"), tmp_path / "bot.log")
    assert bot.proc.wait(30) == 1
    bot.log.close()
    err = (tmp_path / "bot.log").read_text()
    assert "SLACK_APP_TOKEN" in err and "invalid_auth" in err and "Traceback" not in err
    assert [c.error for c in sandbox.calls_of("apps.connections.open")] == ["invalid_auth"]
