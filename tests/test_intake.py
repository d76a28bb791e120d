"""The API's core, without HTTP (SQLite and PostgreSQL): hash merging (into the oldest open
incident holding any of the hashes; a closed incident's hashes open a new one), tokens and
their scopes in the policy, idempotency keys kept 24 hours."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select, update

from bot import idempotency, tokens
from bot.clocks.now import utcnow
from bot.db.models import Evidence, Incident, TimelineEvent
from bot.errors import Forbidden
from bot.incidents import records
from bot.intake import EvidenceItem, declare_with_evidence
from bot.settings import Settings
from runtime.app import build_core
from tests.support import DEMO_CONFIG


@pytest.fixture
def core(db_url):
    core = build_core(Settings(database_url=db_url, config_path=DEMO_CONFIG), slack=False, migrate=True)
    core.dispatcher.kick = lambda: None
    tokens.create(core.db, "matcher", ["declare", "read"])
    yield core
    core.db.dispose()


def h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def match(core, *digests: str, playbook: str = "viral-spread", actor: str = "api:matcher"):
    return declare_with_evidence(core, playbook_id=playbook, summary="Hash match", actor=actor,
                                 evidence=[EvidenceItem({"sha256": d}, source="test") for d in digests])


def test_a_declaration_merges_into_the_oldest_open_incident_holding_a_hash(core):
    a, b = match(core, h("1")), match(core, h("2"))
    assert (a.merged, b.merged) == (False, False) and a.number < b.number
    both = match(core, h("2"), h("1"), h("3"))
    assert both.merged and both.number == a.number and both.matched == [f"sha256:{h('1')}"]
    assert match(core, h("3")).number == a.number  # the new hash of a merged declaration is held too
    assert match(core, h("1"), playbook="csam-report").merged is False  # per playbook
    with core.db.read() as session:
        sightings = session.scalar(select(func.count(Evidence.id)).where(Evidence.incident_id == a.number,
                                                                         Evidence.sighting.is_(True)))
        added = session.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == a.number,
                                                            TimelineEvent.kind == "evidence_added")).all()
    assert sightings == 4 and [e.data["sighting"] for e in added] == [False, True, True]  # 3 items, then 1
    assert added[1].actor == "api:matcher" and added[1].data["evidence"][0]["source"] == "test"


def test_a_closed_incidents_hash_opens_a_new_incident(core):
    first = match(core, h("x"))
    assert match(core, h("x")).merged
    with core.db.tx() as session:
        session.execute(update(Incident).where(Incident.id == first.number).values(status="closed"))
    reopened = match(core, h("x"))
    assert not reopened.merged and reopened.number != first.number
    assert match(core, h("x")).number == reopened.number


def test_tokens_act_through_their_scopes_only(core):
    n = match(core, h("scopes")).number
    assert [r.number for r in records.find(core, "api:matcher", external_id=None)] == [n]
    with pytest.raises(Forbidden, match="update"):
        from bot.incidents.lifecycle import add_note

        add_note(core, n, "api:matcher", "a note")
    with pytest.raises(Forbidden, match="people in Slack"):
        from bot.incidents.lifecycle import set_severity

        set_severity(core, n, "api:matcher", "sev2")
    tokens.revoke(core.db, "matcher")
    with pytest.raises(Forbidden, match="revoked"):
        records.detail(core, n, "api:matcher")
    with pytest.raises(Forbidden):
        match(core, h("after revoke"))


def test_an_idempotency_key_replays_for_24_hours(core):
    assert idempotency.begin(core.db, "matcher", "k1", "hash-a") is None
    with pytest.raises(idempotency.KeyConflict, match="still being answered"):
        idempotency.begin(core.db, "matcher", "k1", "hash-a")
    idempotency.finish(core.db, "matcher", "k1", 201, {"number": 7})
    assert idempotency.begin(core.db, "matcher", "k1", "hash-a") == idempotency.Replay(201, {"number": 7})
    assert idempotency.begin(core.db, "other-token", "k1", "hash-b") is None  # keys are per token
    with pytest.raises(idempotency.KeyConflict, match="different request"):
        idempotency.begin(core.db, "matcher", "k1", "hash-b")
    with freeze_time(utcnow() + timedelta(hours=24, seconds=1)):
        assert idempotency.begin(core.db, "matcher", "k1", "hash-b") is None  # expired: a new first
        assert idempotency.purge(core.db) == 1  # other-token's unanswered key from a day ago


def test_sightings_are_told_at_most_once_a_minute(core):
    from bot.db.models import Task

    match(core, h("often"))

    def summaries():
        with core.db.read() as session:
            return [(t.state, t.not_before) for t in session.scalars(
                select(Task).where(Task.kind == "sightings").order_by(Task.id))]

    for _ in range(5):
        match(core, h("often"))
    assert len(summaries()) == 1  # five sightings, one pending summary
    with core.db.tx() as session:  # the summary went out (as the dispatcher does: the key freed)
        session.execute(update(Task).where(Task.kind == "sightings").values(state="done", dedup_key=None))
    match(core, h("often"))
    (_, first), (state, second) = summaries()
    assert state == "pending" and second - first >= timedelta(minutes=1)


def test_the_content_check_takes_linear_time():
    """No body makes the data: URI or base64 checks backtrack (a 60 KB header-like string once
    took minutes)."""
    import time

    from api.guard import ApiError, refuse_content

    started = time.perf_counter()
    for text in ("data:text/plain;" + "a" * 60_000, "data:" * 13_000, "data:a" + ";a" * 30_000, "A" * 60_000 + "!"):
        refuse_content({"text": text})
    assert time.perf_counter() - started < 2
    with pytest.raises(ApiError) as refused:
        refuse_content({"evidence": [{"content_id": "x"}, {"source": "DATA:image/svg+xml;utf8,<svg"}]})
    assert refused.value.field == "evidence[1].source"


def test_a_summary_waits_a_minute_after_the_last_one_posted(core):
    """The gap counts from the last summary posted: a first summary that waited for a late
    channel was followed 35 s later by the second one (a CI run under load)."""
    from bot.clocks.dispatcher import Retry
    from bot.db.models import Task
    from bot.intake import sightings_task

    first = match(core, h("late"))
    match(core, h("late"))
    with core.db.tx() as session:
        incident = session.get(Incident, first.number)
        incident.channel_id = None
    with core.db.read() as session:
        task = session.scalars(select(Task).where(Task.kind == "sightings")).one()
    with pytest.raises(Retry) as waiting:
        sightings_task(core, task)
    assert waiting.value.counts is False  # waiting for the channel uses no attempt
    with core.db.tx() as session:  # the channel came, and a summary went out 25 s ago
        session.get(Incident, first.number).channel_id = "C0LATE001"
        session.execute(update(Evidence).values(summarised_at=utcnow() - timedelta(seconds=25)))
    match(core, h("late"))
    with pytest.raises(Retry) as quiet:
        sightings_task(core, task)
    assert quiet.value.counts is False and timedelta(seconds=30) <= quiet.value.delay <= timedelta(seconds=35)
