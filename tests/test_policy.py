"""The role policy's boundary: every mutating core function refuses someone outside the policy
and writes nothing; membership follows Slack even when its events are lost; unexpected errors
carry an id the log repeats; the core imports no Slack, web or sandbox code."""

from __future__ import annotations

import ast
import importlib
import inspect
import logging
import pkgutil
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import func, select

import bot
from bot.db.models import Incident, Task, TimelineEvent
from bot.errors import DomainError, Forbidden
from bot.incidents import lifecycle
from bot.policy import MUTATIONS
from tests.conftest import make_bot
from tests.support import DEMO_CONFIG, REPO, wait_for

LEAD, SPEC, LEGAL, OUTSIDER = "U0LEAD001", "U0SPEC001", "U0LEGAL01", "U0OUTSID1"
# Modules whose public functions change incidents; each such function is a policy mutation
# unless it is driven by Slack or the outbox, not by a person asking.
MUTATING_MODULES = ["bot.incidents.declare", "bot.incidents.steps", "bot.incidents.lifecycle",
                    "bot.incidents.people", "bot.incidents.repeats", "bot.paging.service", "bot.timeline.service", "bot.wellbeing",
                    "bot.intake", "bot.incidents.updates"]
NOT_A_PERSON = {"joined", "left", "reconcile", "notify_task", "notify_dead", "resolve_task", "upload_task",
                "upload_failed", "withdraw_pages", "escalate", "open_page", "recompute", "purge_expired",
                "sightings_task", "post_task"}
# A person's own records, in no incident: `/incident break` (the caller acts only on themselves).
SELF_ONLY = {"take_break"}


def _written(core) -> tuple[int, int, int]:
    with core.db.read() as session:
        return (session.scalar(select(func.count(TimelineEvent.id))), session.scalar(select(func.count(Task.id))),
                session.scalar(select(func.count(Incident.id))))


@pytest.fixture
def closed_declare(sandbox, db_url, tmp_path):
    """The demo organisation, where declaring is for the roles' people and the leads only."""
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["permissions"]["declare"] = ["child_safety_specialist", "leads"]
    path = tmp_path / "safeguard.yaml"
    path.write_text(yaml.safe_dump(config))
    handle = make_bot(sandbox, db_url, config=path)
    try:
        yield handle
    finally:
        handle.server.stop()


def test_every_mutation_is_registered():
    """A new function that changes an incident cannot be left out of the policy (and so out of
    the test below): public functions of the mutating modules that write are in MUTATIONS."""
    for name in MUTATING_MODULES:
        module = importlib.import_module(name)
        for fname, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ != name or fname.startswith("_") or fname in NOT_A_PERSON | SELF_ONLY:
                continue
            source = inspect.getsource(inspect.unwrap(fn))
            if "db.tx()" in source or "_finish(" in source:
                assert f"{name}.{fname}" in MUTATIONS, f"{name}.{fname} writes but is not a @mutation"


def test_every_mutation_refuses_an_outsider_and_writes_nothing(closed_declare):
    bot_ = closed_declare
    assert bot_.driver.command(LEAD, "declare csam-report Hash match 77").ok
    channel = bot_.provisioned(1)
    bot_.settle()
    arguments = {
        "incident_id": 1, "actor": OUTSIDER, "step_id": "confirm", "values": {"case_id": "C-1"},
        "reason": "because", "role": "legal", "user": LEGAL, "text": "a note", "target": "1",
        "severity": "sev2", "summary": "done", "anyway": None, "fmt": "md", "playbook_id": "csam-report",
        "channel_id": channel.id, "message": {"ts": "1.000001", "text": "hello", "user": LEAD},
        "ts": "1.000001", "via": "shortcut", "page_id": None, "duration": "25m", "state": "Report filed",
    }
    assert len(MUTATIONS) >= 14
    for mutation in MUTATIONS.values():
        params = inspect.signature(mutation.function).parameters
        missing = [p for p in params if p != "core" and p not in arguments and params[p].default is inspect._empty]
        assert not missing, f"extend this test's arguments for {mutation.name}: {missing}"
        kwargs = {p: arguments[p] for p in params if p in arguments}
        before = _written(bot_.core)
        with pytest.raises(DomainError) as refused:
            mutation.function(bot_.core, **kwargs)
        if mutation.action != "ack":  # acknowledging is for whoever was paged: "no page for you"
            assert isinstance(refused.value, Forbidden), (mutation.name, refused.value)
            assert "Only" in str(refused.value)
        assert _written(bot_.core) == before, f"{mutation.name} wrote something for an outsider"
    # asking whether a declaration repeats an open incident names one: not for who may not declare
    from bot.incidents.repeats import find_repeat

    with pytest.raises(Forbidden):
        find_repeat(bot_.core, "csam-report", "Hash match 77", OUTSIDER)


def test_a_member_removed_without_the_event_loses_access(sandbox, db_url):
    running = make_bot(sandbox, db_url, members_sync_seconds=0.3)
    try:
        assert running.driver.command(LEAD, "declare imminent-harm Threat in comments 4411").ok
        channel = running.provisioned(1)
        assert running.driver.command(LEGAL, "note Called the duty officer", channel=channel.id).message.text \
            .startswith(":memo:")
        answer = running.driver.command(LEGAL, "timeline html", channel=channel.id).message.text
        link = answer[answer.index("<http") + 1:answer.index("|")]
        assert httpx.get(link).status_code == 200
        with running.ws.lock:  # removed in Slack, and the member_left_channel event never arrives
            running.ws.channel(channel.id).members.remove(LEGAL)
        wait_for(lambda: "member_left" in running.kinds(1), timeout=10, what="the reconciliation")
        assert "member_joined" not in running.kinds(1)  # nobody was taken for gone while being invited
        assert httpx.get(link).status_code == 403  # their personal timeline link stops working
        with pytest.raises(Forbidden):  # and so does anything else they try (a form left open, the API)
            lifecycle.add_note(running.core, 1, LEGAL, "Still here?")
        assert [e["text"] for e in running.timeline(1) if e["kind"] == "note"] == ["Called the duty officer"]
        left = [e for e in running.timeline(1) if e["kind"] == "member_left"]
        assert left[0]["data"] == {"user": LEGAL, "source": "reconciled"}
    finally:
        running.server.stop()


def test_an_unexpected_error_has_an_id_in_the_reply_and_the_log(running, caplog, monkeypatch):
    from bot.incidents import queries

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(queries, "list_open", broken)  # an unexpected failure inside the core
    with caplog.at_level(logging.ERROR, logger="safeguard.errors"):
        answer = running.driver.command(LEAD, "list")
    assert answer.status == 200
    text = answer.message.text
    error_id = text.split("`")[1]
    assert error_id.startswith("E-") and len(error_id) >= 6 and "went away" not in text
    logged = [r for r in caplog.records if error_id in r.getMessage()]
    assert logged and logged[0].exc_info and "the database went away" in str(logged[0].exc_info[1])


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_core_imports_no_slack_web_or_sandbox_code():
    forbidden = ("slack_sdk", "slack_bolt", "flask", "waitress", "handlers", "sandbox", "runtime", "api")
    for info in pkgutil.walk_packages(bot.__path__, "bot."):
        path = REPO / (info.name.replace(".", "/") + ("/__init__.py" if info.ispkg else ".py"))
        if "migrations" in info.name:
            continue
        bad = [m for m in _imports(path) if m.split(".")[0] in forbidden]
        assert not bad, f"{info.name} imports {bad}"


def test_the_api_routes_only_parse_call_the_core_and_render():
    """The API (`api/`) is a presentation side like `handlers/`: it may import the core, Flask and
    pydantic, never Slack, the Slack listeners, the sandbox or start-up code; and it writes no
    SQL of its own (the core's functions do, with the token as the actor)."""
    forbidden = ("slack_sdk", "slack_bolt", "handlers", "sandbox", "runtime", "sqlalchemy")
    for path in sorted((REPO / "api").glob("*.py")):
        bad = [m for m in _imports(path) if m.split(".")[0] in forbidden]
        assert not bad, f"api/{path.name} imports {bad}"
        assert "db.tx()" not in path.read_text() and "db.read()" not in path.read_text(), path.name
