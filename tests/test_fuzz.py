"""Property-based fuzzing of the served bot (`safeguard serve` in a subprocess, against the
sandbox): slash commands, every button, every modal submission, the message shortcut and every
event, well-formed and malformed, signed by Slack or not. Whatever arrives, the bot answers
below 500, its log shows no traceback, and the body of a request it refused is never logged.

One bot per database (SQLite, PostgreSQL) serves the whole module; see tests/fuzz_support.py.
`bench/fuzz.py` sends the same requests by the thousand.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.fuzz_support import (
    TRACEBACK,
    Stack,
    block_action,
    event_callback,
    known_cases,
    last_lines,
    message_shortcut,
    slash_command,
    unsigned_request,
    view_submission,
)
from tests.support import postgres_reachable

pytestmark = pytest.mark.e2e


def fuzz_settings(n: int):
    # No shrinking: each example is a request to a live bot whose state moves on, and a failure
    # already names its request; no example database either (the examples aim at this run's ids).
    return settings(deadline=None, max_examples=n, database=None, derandomize=False,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request, tmp_path_factory):
    if request.param == "postgres" and not postgres_reachable():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432 and CI is set: it must run here")
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    with Stack(tmp_path_factory.mktemp(f"fuzz-{request.param}"), request.param) as served:
        served.seed()
        yield served


def run(stack: Stack, probe) -> None:
    outcome, log = stack.probe(probe)
    wrong = stack.check(outcome, log)
    assert not wrong, f"{probe.describe()}\n -> HTTP {outcome.status}: " + "\n    ".join(wrong)


def test_start_up_and_seeding_log_no_traceback(stack):
    assert stack.targets.incidents == [1, 2]
    assert TRACEBACK not in stack.seed_log, last_lines(stack.seed_log)


# ---------------------------------------------------------------------------- the cases

# Known bad inputs from the hardening issue; the ones the bot gets wrong today are marked xfail
# (non-strict) with what happens, so the module passes and turns green case by case as fixed.
_VIEW_META = "views.py json.loads(private_metadata) / meta['incident'] unguarded: Bolt answers 500 and logs a traceback"
_USER_ID = "body['user']['id'] read without a check: KeyError"
_BOLT_PARSE = ("Bolt parses the body before verifying the signature: json.loads raises, Flask answers 500 "
               "with a JSONDecodeError traceback (should be 400 and one line)")
_EVENT_KEY = "events.py reads event[...] without a check: KeyError traceback logged by Bolt (HTTP 200)"
XFAIL: dict[str, str] = {
    "view-declare-non-json-metadata": "HTTP 500; JSONDecodeError in on_declare (views.py json.loads)",
    "view-step-fields-no-private-metadata": "HTTP 500; KeyError 'incident' in on_step_fields: " + _VIEW_META,
    "view-step-fields-non-json-metadata": "HTTP 500; JSONDecodeError in on_step_fields: " + _VIEW_META,
    "view-step-skip-no-private-metadata": "HTTP 500; KeyError 'incident' in on_step_skip: " + _VIEW_META,
    "view-step-skip-non-json-metadata": "HTTP 500; JSONDecodeError in on_step_skip: " + _VIEW_META,
    "view-step-skip-metadata-a-list": "HTTP 500; TypeError (list indices) in on_step_skip: " + _VIEW_META,
    "view-declare-without-user-id": "HTTP 500; " + _USER_ID + " in on_declare",
    "view-step-fields-without-user-id": "HTTP 500; " + _USER_ID + " in on_step_fields",
    "button-empty-actions": "HTTP 500; IndexError in Bolt's action matcher (body['actions'][0]) for actions: []",
    "button-step-done-integer-value": "HTTP 200 but traceback: AttributeError int.partition in actions._target",
    "button-page-ack-integer-value": "HTTP 200 but traceback: AttributeError int.isascii in page_ack",
    "button-step-undo-without-user-id": "HTTP 200 but traceback: " + _USER_ID + " in actions._target",
    "button-page-ack-without-user-id": "HTTP 200 but traceback: " + _USER_ID + " in page_ack",
    "unsigned-timestamp-abc": "HTTP 500; ValueError int('abc') in slack_sdk SignatureVerifier.is_valid (traceback)",
    "unsigned-truncated-json": "HTTP 500; " + _BOLT_PARSE,
    "unsigned-truncated-json-no-headers": "HTTP 500; " + _BOLT_PARSE,
    "unsigned-truncated-payload-form": "HTTP 500; " + _BOLT_PARSE,
    "signed-truncated-json": "HTTP 500; " + _BOLT_PARSE,
    "signed-non-json-payload-form": "HTTP 500; " + _BOLT_PARSE,
    "command-correct-integer-overflow": ("HTTP 200 but traceback: the event number reaches the database unbounded "
                                         "(SQLite OverflowError / PostgreSQL NumericValueOutOfRange)"),
    "command-without-user-id": "HTTP 200 but traceback: KeyError 'user_id' in incident_command (commands.py)",
    "event-reaction-pushpin-missing-message": ("traceback: SlackError conversations.replies thread_not_found "
                                               "escapes add_pinned_message (not a DomainError)"),
    "event-reaction-pushpin-without-user": _EVENT_KEY + " ('user')",
    "event-reaction-pushpin-without-item-ts": _EVENT_KEY + " (item 'ts')",
    "event-member-joined-without-user": _EVENT_KEY + " ('user')",
    "event-member-left-without-channel": _EVENT_KEY + " ('channel')",
    "event-app-mention-without-channel": _EVENT_KEY + " ('channel')",
    "event-member-joined-channel-an-integer": "HTTP 500; TypeError in Bolt's context extraction ('id' in channel)",
}

KNOWN = known_cases()


@pytest.mark.parametrize("case", [
    pytest.param(name, marks=pytest.mark.xfail(reason=XFAIL[name], strict=False)) if name in XFAIL else name
    for name in KNOWN
])
def test_known_bad_case(stack, case):
    probe = KNOWN[case](stack)
    outcome, log = stack.probe(probe, settle=0.15)
    wrong = stack.check(outcome, log)
    assert not wrong, f"{probe.describe()}\n -> HTTP {outcome.status}: " + "\n    ".join(wrong)


# ---------------------------------------------------------------------------- properties


@pytest.mark.xfail(reason="`/incident correct N …` with N beyond 64 bits reaches the database: SQLite "
                          "OverflowError / PostgreSQL NumericValueOutOfRange traceback (HTTP 200)", strict=False)
@fuzz_settings(40)
@given(data=st.data())
def test_slash_commands_as_slack_sends_them(stack, data):
    run(stack, data.draw(slash_command(stack)))


@fuzz_settings(25)
@given(data=st.data())
def test_buttons_modals_shortcuts_and_events_as_slack_sends_them(stack, data):
    strategy = st.one_of(block_action(stack), view_submission(stack), message_shortcut(stack),
                         event_callback(stack))
    run(stack, data.draw(strategy))


@pytest.mark.xfail(reason="malformed payloads reach unguarded code: see the known cases (view metadata, "
                          "user.id, actions: [], integer values, non-JSON bodies, event fields)", strict=False)
@fuzz_settings(25)
@given(data=st.data())
def test_malformed_signed_requests(stack, data):
    strategy = st.one_of(slash_command(stack, malformed=True), block_action(stack, malformed=True),
                         view_submission(stack, malformed=True), message_shortcut(stack, malformed=True),
                         event_callback(stack, malformed=True))
    run(stack, data.draw(strategy))


_BODY_LOGGED = ("Bolt's RequestVerification logs every refused request at INFO with its body "
                "('Invalid request signature detected (signature: …, timestamp: …, body: …)')")


@pytest.mark.xfail(reason=_BODY_LOGGED + "; a non-integer X-Slack-Request-Timestamp ('abc', '', '1.5') or a "
                          "truncated JSON body gives HTTP 500 and a traceback", strict=False)
@fuzz_settings(20)
@given(data=st.data())
def test_unsigned_and_garbled_requests_are_refused_quietly(stack, data):
    probe = data.draw(unsigned_request(stack))
    outcome, log = stack.probe(probe)
    wrong = stack.check(outcome, log)
    if outcome.status is not None and outcome.status < 400:
        wrong.append("an unsigned request was accepted")
    assert not wrong, f"{probe.describe()}\n -> HTTP {outcome.status}: " + "\n    ".join(wrong)


@pytest.mark.xfail(reason=_BODY_LOGGED, strict=False)
def test_no_refused_body_in_the_whole_log(stack):
    """After everything above (and the bot's work after its acks), no refused body anywhere."""
    stack.quiet(0.5)
    log = stack.log_text()
    leaked = [p.describe(150) for p in stack.refused if p.marker and p.marker in log]
    assert not leaked, "refused bodies in the log:\n" + "\n".join(leaked)
