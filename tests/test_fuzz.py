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

# Known bad inputs from the hardening issue and the exhaustive wrong-type sweep (each was a 500 or
# a traceback once).
KNOWN = known_cases()


@pytest.mark.parametrize("case", list(KNOWN))
def test_known_bad_case(stack, case):
    probe = KNOWN[case](stack)
    outcome, log = stack.probe(probe, settle=0.15)
    wrong = stack.check(outcome, log)
    assert not wrong, f"{probe.describe()}\n -> HTTP {outcome.status}: " + "\n    ".join(wrong)


# ---------------------------------------------------------------------------- properties


@fuzz_settings(25)
@given(data=st.data())
def test_slash_commands_as_slack_sends_them(stack, data):
    run(stack, data.draw(slash_command(stack)))


@fuzz_settings(18)
@given(data=st.data())
def test_buttons_modals_shortcuts_and_events_as_slack_sends_them(stack, data):
    strategy = st.one_of(block_action(stack), view_submission(stack), message_shortcut(stack),
                         event_callback(stack))
    run(stack, data.draw(strategy))


@fuzz_settings(18)
@given(data=st.data())
def test_malformed_signed_requests(stack, data):
    strategy = st.one_of(slash_command(stack, malformed=True), block_action(stack, malformed=True),
                         view_submission(stack, malformed=True), message_shortcut(stack, malformed=True),
                         event_callback(stack, malformed=True))
    run(stack, data.draw(strategy))


_BODY_LOGGED = ("Bolt's RequestVerification logs every refused request at INFO with its body "
                "('Invalid request signature detected (signature: …, timestamp: …, body: …)')")


@fuzz_settings(12)
@given(data=st.data())
def test_unsigned_and_garbled_requests_are_refused_quietly(stack, data):
    probe = data.draw(unsigned_request(stack))
    outcome, log = stack.probe(probe)
    wrong = stack.check(outcome, log)
    if outcome.status is not None and outcome.status < 400:
        wrong.append("an unsigned request was accepted")
    assert not wrong, f"{probe.describe()}\n -> HTTP {outcome.status}: " + "\n    ".join(wrong)


def test_no_refused_body_in_the_whole_log(stack):
    """After everything above (and the bot's work after its acks), no refused body anywhere."""
    stack.quiet(0.5)
    log = stack.log_text()
    leaked = [p.describe(150) for p in stack.refused if p.marker and p.marker in log]
    assert not leaked, "refused bodies in the log:\n" + "\n".join(leaked)
