"""Red team of the HTTP API: one served bot (SQLite; the policy and the guard are the same on
PostgreSQL, which tests/test_api.py covers), real HTTP. Content split to pass the length
limits, idempotency keys across tokens, revoked tokens, odd bodies (never a 500, never a
write), and what each scope may not do."""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil

import httpx
import pytest
from sqlalchemy import func, select

from bot import tokens
from bot.db.models import Evidence, Incident, TimelineEvent
from sandbox import payloads
from tests.conftest import make_bot
from tests.policy_support import LEAD, OUTSIDER, checklist, declare
from tests.support import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def api(tmp_path_factory, _migrated_sqlite):
    from sandbox.server import Sandbox

    path = tmp_path_factory.mktemp("redteam-api") / "safeguard.db"
    shutil.copyfile(_migrated_sqlite, path)
    with Sandbox(signing_secret="test-signing-secret") as box:
        running = make_bot(box, f"sqlite:///{path}", api_rate=100_000, api_burst=100_000, task_workers=1)
        made = {name: tokens.create(running.core.db, name, scopes) for name, scopes in (
            ("tool-a", ["declare", "read", "update", "exposure"]), ("tool-b", ["declare", "read", "update"]),
            ("reader", ["read"]), ("decl", ["declare"]), ("upd", ["update"]), ("gone", ["declare", "update"]))}
        try:
            with httpx.Client(base_url=running.server.url + "/api/v1", timeout=30) as client:
                def call(method, url, token="tool-a", **kwargs):
                    headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {made[token]}"}
                    return client.request(method, url, headers=headers, **kwargs)

                call.bot = running
                yield call
        finally:
            running.core.dispatcher.drain(5)
            running.server.stop()


def _written(call) -> tuple[int, int, int]:
    with call.bot.core.db.read() as session:
        return (session.scalar(select(func.count(Incident.id))), session.scalar(select(func.count(Evidence.id))),
                session.scalar(select(func.count(TimelineEvent.id)).where(TimelineEvent.actor.like("api:%"))))


def _file_data(size: int) -> str:
    return base64.b64encode(os.urandom(size)).decode()


def test_file_data_split_to_fit_the_length_limits_is_refused(api):
    n = api("POST", "/incidents", json={"playbook": "viral-spread", "summary": "Split content 1"}).json()["number"]
    before = _written(api)
    data = _file_data(2200)
    mime = "\n".join(data[i:i + 76] for i in range(0, len(data), 76))  # as a mail client wraps it
    big = _file_data(8000)
    chunks = [big[i:i + 200] for i in range(0, 50 * 200, 200)]
    attempts = [
        ("POST", f"/incidents/{n}/notes", {"text": data[:2990]}, "text"),
        ("POST", f"/incidents/{n}/notes", {"text": mime[:2990]}, "text"),
        ("POST", f"/incidents/{n}/notes", {"text": "see " + " ".join(data[i:i + 60] for i in range(0, 2400, 60))},
         "text"),
        ("POST", "/incidents", {"playbook": "viral-spread", "summary": "x",
                                "evidence": [{"content_id": c} for c in chunks]}, None),
    ]
    for method, path, body, field in attempts:
        answer = api(method, path, json=body)
        assert answer.status_code == 422 and answer.json()["error"] == "content_refused", (path, answer.text)
        if field:
            assert answer.json()["field"] == field
    assert _written(api) == before
    # What case tools do send passes: hashes (hex), PhotoDNA in its field, ids, words.
    sha = "ab" * 32
    fine = api("POST", "/incidents", json={
        "playbook": "viral-spread", "summary": f"Reuploads of {sha} and CASE-8812",
        "evidence": [{"sha256": sha, "photodna": _file_data(700)[:1000], "content_id": "1AbCdEfGhIjKlMnOpQrStUvWxYz_0123456789"}
                     ] + [{"content_id": f"upload_{i}_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"} for i in range(49)]})
    assert fine.status_code in (200, 201), fine.text
    note = api("POST", f"/incidents/{n}/notes", json={"text": " ".join([sha] * 40)})
    assert note.status_code == 201, note.text


def test_idempotency_keys_are_per_token_and_die_with_it(api):
    key = {"Idempotency-Key": "shared-key-1"}
    body = {"playbook": "viral-spread", "summary": "Idempotency across tokens 77"}
    first = api("POST", "/incidents", json=body, headers=key)
    other = api("POST", "/incidents", "tool-b", json=body, headers=key)
    assert first.status_code == other.status_code == 201
    assert "Idempotent-Replayed" not in other.headers and other.json()["number"] != first.json()["number"]
    # A refusal under a key is that token's answer only; another token's same key still works.
    n = first.json()["number"]
    note = {"Idempotency-Key": "note-key-1"}
    refused = api("POST", f"/incidents/{n}/notes", "reader", json={"text": "hello"}, headers=note)
    assert refused.status_code == 403
    assert api("POST", f"/incidents/{n}/notes", "upd", json={"text": "hello"}, headers=note).status_code == 201
    # A revoked token gets nothing again, not even its own replay.
    gone_key = {"Idempotency-Key": "gone-1"}
    made = api("POST", "/incidents", "gone", json={**body, "summary": "Revoked 1"}, headers=gone_key)
    assert made.status_code == 201
    tokens.revoke(api.bot.core.db, "gone")
    again = api("POST", "/incidents", "gone", json={**body, "summary": "Revoked 1"}, headers=gone_key)
    assert again.status_code == 401 and "Idempotent-Replayed" not in again.headers


def test_scopes_hold_for_every_route_a_token_might_try(api):
    n = api("POST", "/incidents", json={"playbook": "csam-report", "summary": "Scopes 5"}).json()["number"]
    before = _written(api)
    assert api("GET", "/incidents", "decl").status_code == 403
    assert api("GET", f"/incidents/{n}/timeline", "upd").status_code == 403
    assert api("POST", f"/incidents/{n}/notes", "reader", json={"text": "x"}).status_code == 403
    assert api("POST", "/exposure", "upd", json={"user": "U0SPEC001", "duration": "5m"}).status_code == 403
    confirm = api("POST", f"/incidents/{n}/steps/confirm", "upd",
                  json={"action": "done", "fields": {"case_id": "C-1", "category": "A1", "human_viewed": "all"}})
    assert confirm.status_code == 403
    skip = api("POST", f"/incidents/{n}/steps/confirm", "upd", json={"action": "skip", "reason": "no"})
    assert skip.status_code == 403
    legal = api("POST", f"/incidents/{n}/steps/ncmec-report", "upd", json={"action": "skip", "reason": "no"})
    assert legal.status_code == 403 and "legal clock" in legal.json()["message"]
    for path in (f"/incidents/{n}/close", f"/incidents/{n}/assign", f"/incidents/{n}/severity", f"/incidents/{n}"):
        answer = api("POST", path, json={"role": "incident_lead", "user": "U0OUTSID1"})
        assert answer.status_code in (404, 405) and answer.json()["error"] in ("not_found", "method_not_allowed")
    assert _written(api) == before


@pytest.mark.parametrize("raw", [
    b"[]", b"null", b'"x"', b"1e400", b"9" * 5000, b"[" * 5000 + b"]" * 5000, b'{"a":' * 40 + b"1" + b"}" * 40,
    b'{"text": "\\ud800"}', b'{"data:image/png;base64,AAAA": "x", "text": "y"}', b'{"text\\u0000": "y"}',
    b'{"text": 12345678901234567890123456789}', b'{"text": ["a", ["b", {"c": "d"}]]}', b'{"text": {"$ne": 1}}',
    b'{"text": "\\u202eevil\\u200b<!channel>"}', b"\xff\xfe{}", b'{"text": "ok", "text": "dup"}',
])
def test_odd_bodies_are_answered_never_a_500_and_write_nothing(api, raw):
    n = 1
    before = _written(api)
    for path in (f"/incidents/{n}/notes", "/incidents", f"/incidents/{n}/steps/confirm", "/exposure"):
        answer = api("POST", path, content=raw, headers={"Content-Type": "application/json"})
        assert answer.status_code < 500, (path, answer.text)
        if answer.status_code < 300:  # only a body that is a proper note may add one
            assert path.endswith("/notes"), (path, raw, answer.text)
        else:
            assert set(answer.json()) >= {"error", "message"}, (path, answer.text)
    if _written(api) != before:
        assert raw in (b'{"text": "\\u202eevil\\u200b<!channel>"}', b'{"text": "ok", "text": "dup"}')


# -- forged Slack payloads for the new buttons ----------------------------------------------------

def _payload(running, user: str, channel, action: dict, *, home: bool = False) -> dict:
    ws = running.ws
    with ws.lock:
        message = checklist(running, channel)
        base = payloads.block_actions_for_message(
            ws, user=user, channel=channel, message=message, block={"block_id": "x"},
            element={"type": "button", "action_id": "x", "value": "x"}, value=None,
            trigger_id=ws.mint_trigger(user),
            # (no message to replace: the real buttons of the repeat question are on an ephemeral one)
            response_url=ws.mint_response_url(running.sandbox.base_url, channel=channel.id, user=user,
                                              kind="block_actions"))
    base["actions"] = [{"block_id": "x", "action_ts": "1.1", "type": "button", **action}]
    if home:  # a click on the Home tab: a view, no channel, no response_url
        for key in ("channel", "message", "response_url"):
            base.pop(key, None)
        base["container"] = {"type": "view", "view_id": "V0HOME"}
        base["view"] = {"id": "V0HOME", "type": "home", "callback_id": "home", "blocks": []}
    return base


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_forged_payloads_of_the_new_buttons_are_answered_in_words(running, caplog):
    channel = declare(running, 1)
    join = {"playbook": "csam-report", "summary": "Hash match on upload 8812", "severity": None, "channel": None}
    forged = [  # (who, action, home?)
        (OUTSIDER, {"action_id": "incident_menu", "selected_option": {"value": "1:update"}}, False),
        (LEAD, {"action_id": "incident_menu", "selected_option": {"value": "1:nuke"}}, False),
        (LEAD, {"action_id": "incident_menu", "selected_option": "1:update"}, False),
        (LEAD, {"action_id": "incident_menu", "selected_option": {"value": ["1:update"]}}, False),
        (LEAD, {"action_id": "incident_menu"}, False),
        (LEAD, {"action_id": "incident_update", "value": "99:update"}, False),
        (OUTSIDER, {"action_id": "incident_update", "value": "1:update"}, False),
        (LEAD, {"action_id": "incident_update", "value": {"n": 1}}, False),
        (LEAD, {"action_id": "home_declare", "value": "declare"}, True),
        (OUTSIDER, {"action_id": "repeat_join", "value": json.dumps({**join, "incident": 1})}, False),
        (OUTSIDER, {"action_id": "repeat_join", "value": json.dumps({**join, "incident": True})}, False),
        (OUTSIDER, {"action_id": "repeat_join", "value": json.dumps({**join, "incident": 10**12})}, False),
        (OUTSIDER, {"action_id": "repeat_join", "value": json.dumps({**join, "incident": 1, "summary": ["x"]})}, False),
        (OUTSIDER, {"action_id": "repeat_join", "value": json.dumps({**join, "incident": 1, "playbook": "grooming"})},
         False),
        (OUTSIDER, {"action_id": "repeat_join", "value": "{not json"}, False),
        (OUTSIDER, {"action_id": "repeat_declare", "value": json.dumps({**join, "playbook": "nope"})}, False),
        (LEAD, {"action_id": "page_ack", "value": "all"}, False),
        (LEAD, {"action_id": "page_ack"}, False),
        (OUTSIDER, {"action_id": "page_ack", "value": "1"}, True),
        (OUTSIDER, {"action_id": "page_ack", "value": "99999999999999"}, True),
    ]
    before = len(running.timeline(1))
    for user, action, home in forged:
        seen = len(running.ws.ephemeral(channel.id, user))
        result = running.driver.send_interaction(_payload(running, user, channel, action, home=home))
        assert result.status is not None and result.status < 500, (action, result)
        if not home:
            told = wait_for(lambda u=user, s=seen: running.ws.ephemeral(channel.id, u)[s:], what=f"an answer to {action}")
            text = told[0].text
            assert "E-" not in text and "went wrong" not in text, (action, text)
            assert LEAD not in text and "8812" not in text, (action, text)  # nothing of INC-1 to an outsider
            if action["action_id"] == "page_ack":  # a garbled page id is not `/incident ack` (every page)
                assert "out of date" in text, text
    running.settle()
    kinds = [e["kind"] for e in running.timeline(1)[before:]]
    assert set(kinds) <= {"repeat_reported"}, kinds
    assert not unexpected_errors(caplog)


def unexpected_errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.ERROR and ("unexpected" in r.getMessage() or r.exc_info)]


def test_odd_queries_and_headers_are_answered_never_a_500(api):
    for query in ("limit=1e9", "limit=-1", "offset=99999999999999999999", "status=open&status=closed",
                  "playbook=%00", "playbook=%ED%A0%80", "external_id=" + "x" * 5000, "limit=", "status=%F0%9F%92%A3",
                  "playbook=data:image/png;base64,AAAA"):
        answer = api("GET", "/incidents?" + query)
        assert answer.status_code < 500 and answer.status_code in (200, 422), (query, answer.text)
    for path in ("/incidents/0", "/incidents/-1", f"/incidents/{2**63}", "/incidents/1%00", "/incidents/1/timeline/x"):
        assert api("GET", path).status_code == 404, path
    for header in ("Bearer", "Bearer " + "x" * 10_000, "Basic dXNlcjpwYXNz", "bearer sgt_", "Bearer a b"):
        answer = httpx.get(str(api.bot.server.url) + "/api/v1/incidents", headers={"Authorization": header})
        assert answer.status_code == 401, (header[:20], answer.text)
