"""Scale: replicas that share the firing of timers on PostgreSQL (each timer once, both replicas
fire some). The priority migration is walked in tests/test_migrations.py."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.clocks import firing
from bot.clocks.arming import add_timer
from bot.clocks.now import utcnow
from bot.db.engine import Database
from bot.db.models import Incident, Timer
from bot.incidents.declare import declare
from bot.timeline.store import lock_incident
from tests.clocks_support import side_core, timer_counts
from tests.support import DEMO_CONFIG

LEAD = "U0LEAD001"


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_two_replicas_fire_each_timer_once_and_share_the_work(db_url, monkeypatch):
    database = Database(db_url)
    database.upgrade()
    database.dispose()
    replicas = [side_core(db_url, DEMO_CONFIG), side_core(db_url, DEMO_CONFIG)]
    one = replicas[0]
    try:
        for core in replicas:
            core.dispatcher.kick = lambda: None  # these cores only write rows
        for n in range(20):
            declare(one, playbook_id="clock-quiet", summary=f"Replica share {n}", actor=LEAD)
        due = utcnow() - timedelta(seconds=1)
        with one.db.tx() as session:
            for incident in session.scalars(select(Incident).order_by(Incident.id)):
                lock_incident(session, incident.id)
                for k in range(10):
                    add_timer(one, session, incident, kind="remind", due=due + timedelta(milliseconds=k),
                              step_id="report", target="owner", spec={"after": "0s", "from": "declared"},
                              text=f"Share {k}")
        monkeypatch.setattr(firing, "BATCH", 10)  # 20 batches: the replicas interleave
        start = threading.Barrier(2)
        fired: list[int] = []

        def replica(core) -> None:
            start.wait()
            total = 0
            while count := firing.fire_due(core, utcnow()):  # a pass fires BATCHES_PER_PASS batches
                total += count
            fired.append(total)

        threads = [threading.Thread(target=replica, args=(core,)) for core in replicas]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sum(fired) == 200
        counts = timer_counts(db_url)
        with one.db.read() as session:
            armed = {t.id: t for t in session.scalars(select(Timer).where(Timer.kind == "remind"))}
            by = Counter(t.fired_by for t in armed.values())
        assert len(armed) == 200 and {t.state for t in armed.values()} == {"fired"}
        assert Counter(counts.fired.get(t, 0) for t in armed) == Counter({1: 200})  # one timer_fired each
        assert set(by) == {core.dispatcher.node for core in replicas}, by  # both fired some
        assert min(by.values()) >= 20, by
    finally:
        for core in replicas:
            core.db.dispose()
