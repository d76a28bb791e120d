"""The HTTP API end to end: a served bot (sharing one per database for the module), real HTTP,
the sandbox as Slack. Tokens and scopes, each endpoint with and without its scope, a declaration
by API set up as one from Slack, idempotency, the report id by API starting the preservation
clock, content refusals, errors and the rate limit, exposure, and a pipeline of 1,000 matches
over 50 hashes from 4 threads (exactly 50 incidents and 950 sightings) on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from bot import tokens
from bot.db.engine import Database
from bot.db.models import Evidence, Exposure, Incident, Timer
from tests.conftest import _pg_ok, make_bot
from tests.support import DEMO_CONFIG, REPO, postgres_schema, wait_for

pytestmark = pytest.mark.e2e
LEAD, SPEC = "U0LEAD001", "U0SPEC001"
SCOPES = ("declare", "read", "update", "exposure")


@dataclass
class Api:
    bot: object
    base: str
    tokens: dict[str, str]  # scope (or "all") → token
    client: httpx.Client

    def call(self, method: str, path: str, token: str | None = "all", **kwargs) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {self.tokens.get(token, token)}"
        return self.client.request(method, self.base + path, headers=headers, **kwargs)

    def declare(self, summary: str = "Hash match on upload 8812", playbook: str = "csam-report", **extra):
        answer = self.call("POST", "/incidents", json={"playbook": playbook, "summary": summary, **extra})
        assert answer.status_code in (200, 201), answer.text
        return answer.json()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request, tmp_path_factory):
    from sandbox.server import Sandbox

    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("api") / "safeguard.db"
        shutil.copyfile(request.getfixturevalue("_migrated_sqlite"), path)
        schema = None
        url = f"sqlite:///{path}"
    else:
        if not _pg_ok():
            if os.environ.get("CI"):
                pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 and CI is set")
            pytest.skip("PostgreSQL is not reachable")
        schema = postgres_schema()
        url = schema.__enter__()
    with Sandbox(signing_secret="test-signing-secret") as box:
        running = make_bot(box, url, api_rate=100_000, api_burst=100_000, task_workers=2)
        made = {scope: tokens.create(running.core.db, f"only-{scope}", [scope]) for scope in SCOPES}
        made["all"] = tokens.create(running.core.db, "case-tool", list(SCOPES))
        try:
            with httpx.Client(timeout=30) as client:
                yield Api(running, running.server.url + "/api/v1", made, client)
        finally:
            running.core.dispatcher.drain(5)
            running.server.stop()
            if schema is not None:
                schema.__exit__(None, None, None)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_each_endpoint_needs_a_token_and_its_scope(api):
    first = api.declare("Scope check 1", evidence=[{"sha256": sha("scope-1"), "source": "test"}])
    n = first["number"]
    calls = [  # (method, path, json, scope, success status)
        ("POST", "/incidents", {"playbook": "imminent-harm", "summary": "Threat in comments 4411"}, "declare", 201),
        ("GET", "/incidents?status=open", None, "read", 200),
        ("GET", f"/incidents/{n}", None, "read", 200),
        ("GET", f"/incidents/{n}/timeline", None, "read", 200),
        ("POST", f"/incidents/{n}/notes", {"text": "Case C-77 opened in the case tool"}, "update", 201),
        ("POST", f"/incidents/{n}/steps/hash-share", {"action": "skip", "reason": "no new hashes"}, "update", 200),
        ("POST", "/exposure", {"user": SPEC, "duration": "10m", "kind": "image"}, "exposure", 201),
    ]
    for method, path, body, scope, ok in calls:
        kwargs = {"json": body} if body is not None else {}
        assert api.call(method, path, token=None, **kwargs).status_code == 401, path
        assert api.call(method, path, token="sgt_not-a-token", **kwargs).json()["error"] == "unauthorized"
        for other in SCOPES:
            if other != scope:
                refused = api.call(method, path, token=other, **kwargs)
                assert refused.status_code == 403, (path, other, refused.text)
                assert refused.json()["error"] == "forbidden" and scope in refused.json()["message"]
        answer = api.call(method, path, token=scope, **kwargs)
        assert answer.status_code == ok, (path, answer.text)
    # The actor on the timeline is the token; nothing was written by the refused calls.
    events = api.call("GET", f"/incidents/{n}/timeline").json()
    notes = [e for e in events if e["kind"] == "note"]
    assert [(e["actor"], e["text"]) for e in notes] == [("api:only-update", "Case C-77 opened in the case tool")]
    assert [e["actor"] for e in events if e["kind"] == "step_skipped"] == ["api:only-update"]
    # What is for people in Slack stays there, and `who:` steps are for the roles they name.
    confirm = api.call("POST", f"/incidents/{n}/steps/confirm", json={"action": "done", "fields": {"case_id": "C-1"}})
    assert confirm.status_code == 403 and "specialist" in confirm.json()["message"].lower()
    # A revoked token stops working at once.
    assert api.call("GET", "/incidents", token="read").status_code == 200
    tokens.revoke(api.bot.core.db, "only-read")
    assert api.call("GET", "/incidents", token="read").status_code == 401


def test_a_declaration_by_api_is_set_up_as_one_from_slack(api):
    bot = api.bot
    assert bot.driver.command(LEAD, "declare csam-report Hash match on upload 9001").ok
    by_slack = wait_for(lambda: bot.core.db and _latest(bot, "U0LEAD001"), what="the Slack declaration")
    by_api = api.declare("Hash match on upload 9002", external_id="case-9002",
                         evidence=[{"sha256": sha("setup-1"), "md5": "0" * 32, "content_id": "up-9002", "source": "photodna"}])
    assert by_api["merged"] is False and by_api["url"].endswith(f"/api/v1/incidents/{by_api['number']}")
    slack_channel, api_channel = bot.provisioned(by_slack), bot.provisioned(by_api["number"])
    wait_for(lambda: bot.ws.pins(api_channel.id) and bot.ws.pins(slack_channel.id), what="both checklists pinned")
    bot.settle()
    assert api_channel.name == f"inc-{by_api['number']}-csam-report" and api_channel.is_private
    assert set(api_channel.members) == set(slack_channel.members)
    assert len(bot.ws.pins(api_channel.id)) == len(bot.ws.pins(slack_channel.id)) == 1
    assert _clocks(bot, by_api["number"]) == _clocks(bot, by_slack)
    kinds = lambda n: Counter(e["kind"] for e in bot.timeline(n) if e["kind"] not in ("evidence_added",))  # noqa: E731
    assert kinds(by_api["number"]) == kinds(by_slack)
    detail = api.call("GET", f"/incidents/{by_api['number']}").json()
    assert detail["channel_id"] == api_channel.id and detail["external_id"] == "case-9002"
    assert detail["declared_by"] == "api:case-tool" and detail["clocks"] and detail["steps"][0]["state"] == "active"
    found = api.call("GET", "/incidents", params={"external_id": "case-9002"}).json()["incidents"]
    assert [i["number"] for i in found] == [by_api["number"]]
    checklist = next(m for m in bot.ws.channel(api_channel.id).messages if m.ts == bot.ws.pins(api_channel.id)[0])
    assert "api:case-tool" in str(checklist.blocks) and "<@api:" not in str(checklist.blocks)


def _latest(bot, declarer: str) -> int | None:
    with bot.core.db.read() as session:
        return session.scalar(select(func.max(Incident.id)).where(Incident.declared_by == declarer))


def _clocks(bot, number: int) -> list[tuple]:
    with bot.core.db.read() as session:
        rows = session.scalars(select(Timer).where(Timer.incident_id == number, Timer.state == "pending"))
        return sorted((t.kind, t.step_id or "", t.target or "", t.spec.get("after", "")) for t in rows)


def test_idempotency_key_gives_the_first_answer_again(api):
    body = {"playbook": "grooming", "summary": "Grooming report 5511", "external_id": "idem-1"}
    key = {"Idempotency-Key": "pipeline-run-42:item-1"}
    first = api.call("POST", "/incidents", json=body, headers=key)
    again = api.call("POST", "/incidents", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    other = api.call("POST", "/incidents", json={**body, "summary": "Another"}, headers=key)
    assert other.status_code == 409 and other.json()["error"] == "conflict"
    assert len(api.call("GET", "/incidents", params={"external_id": "idem-1"}).json()["incidents"]) == 1
    # Refusals are answers too: the same key gets the same refusal, without trying again.
    note = {"Idempotency-Key": "note-on-nothing"}
    missing = api.call("POST", "/incidents/999999/notes", json={"text": "x"}, headers=note)
    assert missing.status_code == 404
    assert api.call("POST", "/incidents/999999/notes", json={"text": "x"}, headers=note).json() == missing.json()


def test_the_report_id_by_api_starts_the_preservation_clock(api):
    bot = api.bot
    n = api.declare("Hash match on upload 7001")["number"]
    channel = bot.provisioned(n)
    bot.settle()
    assert bot.driver.command(SPEC, "done confirm case_id=C-7001 category=A1 human_viewed=all", channel=channel.id).ok
    early = api.call("POST", f"/incidents/{n}/steps/ncmec-report", json={"action": "done", "fields": {"report_id": "12ab"}})
    assert early.status_code == 422 and early.json()["field"] == "fields.report_id"
    done = api.call("POST", f"/incidents/{n}/steps/ncmec-report", json={"action": "done", "fields": {"report_id": "123456"}})
    assert done.status_code == 200, done.text
    with bot.core.db.read() as session:
        hold = session.scalars(select(Timer).where(Timer.incident_id == n, Timer.step_id == "hold-review",
                                                   Timer.state == "pending")).one()
        incident_events = {e["kind"]: e for e in bot.timeline(n)}
    done_at = next(s for s in api.call("GET", f"/incidents/{n}").json()["steps"] if s["id"] == "ncmec-report")["done_at"]
    assert hold.spec["from"] == "ncmec-report" and "2258A(h)" in hold.spec["basis"]
    assert abs(hold.due_at - hold.armed_at - timedelta(days=330)) < timedelta(seconds=5)
    assert incident_events["step_done"]["actor"] in ("api:case-tool", SPEC) and done_at
    detail = api.call("GET", f"/incidents/{n}").json()
    assert any("2258A(h)" in c["basis"] for c in detail["clocks"])
    again = api.call("POST", f"/incidents/{n}/steps/ncmec-report", json={"action": "done", "fields": {"report_id": "1"}})
    assert again.status_code == 409 and again.json()["error"] == "conflict"


def test_content_never_passes(api):
    n = api.declare("Content refusal 1")["number"]
    before = _counts(api)
    big = "A" * 5000
    cases = [
        (dict(content=b'{"text": "x"}', headers={"Content-Type": "text/plain"}), 415, None),
        (dict(content=b"--x\r\n", headers={"Content-Type": "multipart/form-data; boundary=x"}), 415, None),
        (dict(content=b"{" + b" " * 70_000 + b"}", headers={"Content-Type": "application/json"}), 413, None),
        (dict(json={"text": big}), 422, "text"),
        (dict(json={"text": "see data:image/png;base64,iVBORw0KGgo="}), 422, "text"),
        (dict(content=b'{"text": ', headers={"Content-Type": "application/json"}), 400, None),
        (dict(json={"text": "a\u0000b"}), 422, "text"),
        (dict(json={"text": "ok", "file": "x"}), 422, "file"),
    ]
    for kwargs, status, field in cases:
        answer = api.call("POST", f"/incidents/{n}/notes", **kwargs)
        assert answer.status_code == status, (kwargs.get("headers"), answer.text)
        assert set(answer.json()) >= {"error", "message"}
        if field:
            assert answer.json()["field"] == field
    declared = api.call("POST", "/incidents", json={"playbook": "csam-report", "summary": "x",
                                                    "evidence": [{"content_id": "data:video/mp4;base64,AAAA"}]})
    assert declared.status_code == 422 and declared.json()["field"] == "evidence[0].content_id"
    no_hash = api.call("POST", "/incidents", json={"playbook": "csam-report", "summary": "x",
                                                   "evidence": [{"content_id": "u1"}, {"sha256": "abc"}]})
    assert no_hash.status_code == 422 and no_hash.json()["field"] == "evidence[1].sha256"
    assert _counts(api) == before
    # A body sent in chunks (no Content-Length) over 64 KiB is refused as well.
    chunks = (b'{"text": "' + b"x" * 1024 * 8 for _ in range(10))
    chunked = api.call("POST", f"/incidents/{n}/notes", content=chunks, headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413
    # Errors are JSON with a code, never a 500: unknown numbers, steps, paths and fields.
    assert api.call("GET", f"/incidents/{2**40}").status_code == 404
    assert api.call("POST", f"/incidents/{n}/steps/nope", json={"action": "done"}).json()["error"] == "not_found"
    assert api.call("GET", "/nothing-here").json()["error"] == "not_found"
    bad = api.call("POST", "/incidents", json={"playbook": "csam-report", "summary": "x", "severity": "sev9"})
    assert bad.status_code == 422 and bad.json()["field"] == "severity"
    unknown = api.call("POST", "/incidents", json={"playbook": "no-such-playbook", "summary": "x"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "playbook"


def _counts(api) -> tuple[int, int]:
    with api.bot.core.db.read() as session:
        return (session.scalar(select(func.count(Incident.id))), session.scalar(select(func.count(Evidence.id))))


def test_exposure_writes_the_private_ledger_and_the_custody_fact(api):
    n = api.declare("Exposure 1")["number"]
    answer = api.call("POST", "/exposure", json={"user": SPEC, "duration": "25m", "items": 40, "kind": "image",
                                                 "incident": n})
    assert answer.status_code == 201 and answer.json()["custody_event"]
    assert "25" not in str(answer.json()) and "today" not in answer.json()  # no figures to the tool
    custody = [e for e in api.call("GET", f"/incidents/{n}/timeline").json() if e["kind"] == "content_viewed"]
    assert custody[-1]["data"] == {"user": SPEC, "items": 40} and custody[-1]["actor"] == "api:case-tool"
    with api.bot.core.db.read() as session:
        row = session.scalars(select(Exposure).where(Exposure.incident_id == n)).one()
    assert (row.user_id, row.seconds, row.kind, row.items) == (SPEC, 1500, "image", 40)
    wrong = api.call("POST", "/exposure", json={"user": SPEC, "duration": "13h"})
    assert wrong.status_code == 422 and wrong.json()["field"] == "duration"


def test_each_token_is_rate_limited(api):
    from api.guard import TokenBuckets
    from api.routes import LIMITER

    web = api.bot.bot.web
    kept = web.extensions[LIMITER]
    web.extensions[LIMITER] = TokenBuckets(rate=0.5, burst=3)
    try:
        answers = [api.call("GET", "/incidents?limit=1") for _ in range(5)]
    finally:
        web.extensions[LIMITER] = kept
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert answers[-1].json()["error"] == "rate_limited" and int(answers[-1].headers["Retry-After"]) >= 1


@pytest.mark.xdist_group("heavy")
def test_a_pipeline_of_1000_matches_over_50_hashes(api):
    """4 threads send 1,000 matches of 50 hashes: exactly 50 incidents and 950 sightings, every
    answer 201 (new) or 200 (merged), and at most one sightings message per incident a minute."""
    sent = subprocess.run([sys.executable, "-m", "tests.api_pipeline", api.base, api.tokens["declare"], "1000", "50",
                           "4"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert sent.returncode == 0, sent.stderr[-2000:]
    answers = [json.loads(line) for line in sent.stdout.splitlines()]
    statuses = Counter(status for status, _ in answers)
    assert statuses == {201: 50, 200: 950}, statuses
    incidents = {number for _, number in answers}
    assert len(incidents) == 50
    with api.bot.core.db.read() as session:
        assert session.scalar(select(func.count(Incident.id)).where(Incident.playbook_id == "viral-spread")) == 50
        assert session.scalar(select(func.count(Evidence.id)).where(Evidence.sighting.is_(True),
                                                                    Evidence.incident_id.in_(incidents))) == 950
    bot = api.bot
    for number in sorted(incidents)[:3]:  # each had sightings: one summary, not one message per match
        channel = bot.provisioned(number, timeout=120)

        def summaries(channel_id=channel.id):
            return [m for m in bot.ws.channel(channel_id).messages if "new sighting" in (m.text or "")]

        wait_for(summaries, timeout=60, what="the sightings summary")
        posted = summaries()
        assert "in all" in posted[-1].text
        # On a slow machine the pipeline may outlast a minute: then a second summary is right,
        # but never two within a minute.
        stamps = sorted(float(m.ts) for m in posted)
        assert all(later - earlier >= 59 for earlier, later in zip(stamps, stamps[1:], strict=False)), stamps


@pytest.mark.parametrize("api", ["sqlite"], indirect=True)  # the document and its fuzzing: one database
def test_openapi_document_validates_and_a_property_run_finds_no_server_error(api, tmp_path):
    from openapi_spec_validator import validate

    document = httpx.get(api.base + "/openapi.json").json()  # served without a token
    validate(document)
    assert document["openapi"].startswith("3.1") and "/api/v1/incidents/{number}/steps/{step}" in document["paths"]
    schema_props = document["components"]["schemas"]["DeclareRequest"]["properties"]
    assert set(schema_props) == {"playbook", "summary", "severity", "external_id", "evidence"}
    # Schemathesis generates requests from the document (valid and not) and fails on any 5xx.
    origin = api.base.removesuffix("/api/v1")
    result = subprocess.run([str(Path(sys.executable).parent / "schemathesis"), "run", api.base + "/openapi.json",
                             "--url", origin, "-H", f"Authorization: Bearer {api.tokens['all']}",
                             "--checks", "not_a_server_error", "--phases", "fuzzing", "-n", "10", "--seed", "1",
                             "--no-color"], capture_output=True, text=True, timeout=120, cwd=tmp_path)  # its cache there
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "passed" in result.stdout


def test_token_cli_creates_lists_and_revokes(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from runtime.cli import main

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SAFEGUARD_", "DATABASE_URL"))}
    env.update(DATABASE_URL=url, SAFEGUARD_CONFIG=str(DEMO_CONFIG))
    monkeypatch.setenv("DATABASE_URL", url)

    def run(*args):  # in this process (a second each saved); the console script is run once below
        return CliRunner().invoke(main, ["token", *args])

    missing = run("list")
    assert missing.exit_code == 1 and "No database" in missing.stderr and missing.exception.__class__ is SystemExit
    database = Database(url)
    database.upgrade()
    made = subprocess.run([sys.executable, "-m", "runtime.cli", "token", "create", "hash-matcher", "--scope", "declare",
                           "--scope", "read"], capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()  # stdout holds the token alone; the words go to stderr
    assert secret.startswith("sgt_") and "api:hash-matcher" in made.stderr
    assert tokens.authenticate(database, secret).scopes == ("declare", "read")
    listed = run("list")
    assert "hash-matcher" in listed.stdout and "declare,read" in listed.stdout and secret not in listed.stdout
    for args, words in ((("create", "hash-matcher", "--scope", "read"), "exists already"),
                        (("create", "x", "--scope", "admin"), "unknown: admin"),
                        (("create", "Bad Name", "--scope", "read"), "not a token name"),
                        (("revoke", "nobody"), "no token named")):
        refused = run(*args)
        assert refused.exit_code == 1 and words in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
        assert "Traceback" not in refused.output
    assert run("revoke", "hash-matcher").exit_code == 0
    assert tokens.authenticate(database, secret) is None
    assert "hash-matcher" in run("list").stdout  # still listed, as revoked
    database.dispose()
