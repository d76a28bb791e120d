"""A bot killed with SIGKILL while timers are pending fires each of them exactly once when it
is started again after they came due (the database is the only truth)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from sqlalchemy import select

from bot.db.engine import Database
from bot.db.models import Incident, Task, Timer
from sandbox.blockkit import find_element
from tests.clocks_support import BotProcess, arm, serve_env, side_core, timer_counts, write_config
from tests.support import DEMO_CONFIG, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LEAD, LEGAL = "U0LEAD001", "U0LEGAL01"
INCIDENTS = 2


@pytest.mark.xdist_group("heavy")
def test_timers_due_while_the_bot_was_down_fire_once_after_restart(sandbox, db_url, tmp_path):
    roles = yaml.safe_load(DEMO_CONFIG.read_text())["roles"]
    roles["legal"]["escalation"] = [{"notify": ["slack"], "ack_within": "15m"}]
    config = write_config(tmp_path / "org", events_url="http://127.0.0.1:9/v2/enqueue", changes={"roles": roles})
    if not db_url.startswith("sqlite"):
        database = Database(db_url)
        database.upgrade()
        database.dispose()
    env = serve_env(sandbox, db_url, config)
    log = tmp_path / "bot.log"

    first = BotProcess(env, log).wait_ready()
    core = None
    try:
        sandbox.set_bot_url(first.events_url)
        for n in range(1, INCIDENTS + 1):
            assert sandbox.driver.command(LEAD, f"declare clock-quiet Restart drill {n}").ok
        channels = [wait_for(lambda n=n: sandbox.state.channel_by_name(f"inc-{n}-clock-quiet"), what=f"INC-{n}")
                    for n in range(1, INCIDENTS + 1)]
        core = side_core(db_url, config)

        def provisioned() -> bool:
            with core.db.read() as session:
                busy = session.scalar(select(Task.id).where(Task.state.in_(("pending", "running"))).limit(1))
                return busy is None and all(i.checklist_pinned for i in session.scalars(select(Incident)))

        wait_for(provisioned, 15, what="the incidents to be provisioned")

        due = datetime.now(UTC) + timedelta(seconds=1.2)
        armed = []
        for number in range(1, INCIDENTS + 1):
            armed.append(arm(core, number, kind="remind", due=due, target="owner"))
            armed.append(arm(core, number, kind="remind", due=due + timedelta(milliseconds=300), target="owner"))
            armed.append(arm(core, number, kind="page", due=due, target="legal"))
        first.kill()  # before they are due
        assert all(timer_counts(db_url).timers[t] == "pending" for t in armed), "fired before the kill"

        time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.3)
        assert all(timer_counts(db_url).timers[t] == "pending" for t in armed)
        second = BotProcess(env, log).wait_ready()
        try:
            sandbox.set_bot_url(second.events_url)
            wait_for(lambda: all(timer_counts(db_url).timers[t] == "fired" for t in armed), 15,
                     what="the timers to fire after the restart")

            def reminders(channel) -> list:
                return [m for m in sandbox.state.messages(channel.id) if ":alarm_clock:" in m.text]

            def page_dms() -> list:
                return [m for m in sandbox.state.dms(LEGAL) if find_element(m.blocks, "page_ack", None, None)]

            wait_for(lambda: all(len(reminders(c)) == 2 for c in channels) and len(page_dms()) == INCIDENTS,
                     15, what="the reminders and pages")
            time.sleep(1.1)  # another sweep of the restarted bot: nothing fires twice
            counts = timer_counts(db_url)
            assert {t: counts.fired.get(t) for t in armed} == {t: 1 for t in armed}
            assert [len(reminders(c)) for c in channels] == [2] * INCIDENTS
            assert len(page_dms()) == INCIDENTS
            with core.db.read() as session:
                rows = session.scalars(select(Timer).where(Timer.id.in_(armed))).all()
                assert len({t.fired_by for t in rows}) == 1  # all by the restarted process
                assert all(t.fired_at >= due for t in rows)

            def unfinished() -> list:  # a message shows in Slack a moment before its task is marked done
                with core.db.read() as session:
                    return [(t.kind, t.state, t.last_error) for t in session.scalars(
                        select(Task).where(Task.kind.in_(("post", "page_notify")), Task.state != "done"))]

            wait_for(lambda: not unfinished(), 15, what="the posts to be marked done")
            for number in range(1, INCIDENTS + 1):
                with core.db.read() as session:
                    from bot.timeline.build import load_events
                    kinds = [e.kind for e in load_events(session, number)]
                assert kinds.count("timer_fired") == 3 and kinds.count("reminder_sent") == 2
                assert kinds.count("page_opened") == 1 and kinds.count("page_sent") == 1
        finally:
            second.stop()
    finally:
        if first.proc.poll() is None:
            first.kill()
        if core is not None:
            core.db.dispose()
