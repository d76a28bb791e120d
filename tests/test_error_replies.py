"""Errors into replies (handlers/errors.py): the cases the fuzzer's sweep found."""

from __future__ import annotations

import logging

from bot.errors import RateLimited
from handlers.errors import explain, modal_errors


def test_a_rate_limit_is_one_warning_line_not_a_traceback(caplog):
    """A listener whose Slack call the pacing defers (a burst of 📌 or mentions) is expected, not a crash."""
    with caplog.at_level(logging.WARNING, logger="safeguard.errors"):
        reply = explain(RateLimited("chat.postMessage", 5.7), where="event_callback")
    assert "Try again in 6 s" in reply.text and reply.error_id in reply.text
    assert [(r.levelname, r.exc_info) for r in caplog.records] == [("WARNING", None)]


def test_modal_errors_of_a_view_whose_blocks_are_not_a_list():
    reply = explain(RateLimited("views.open", 1))
    for blocks in (1, 10**30, True, "x", {}, [{"type": "input", "block_id": []}], [None]):
        answer = modal_errors(reply, {"blocks": blocks})
        assert answer["response_action"] == "update", blocks
    answer = modal_errors(reply, {"blocks": [{"type": "input", "block_id": ["a"]}, {"type": "input", "block_id": "b"}]})
    assert list(answer["errors"]) == ["b"]


def test_the_ack_deadline_counts_from_the_requests_arrival():
    """A listener that started 1.6 s after its request arrived (a busy machine) must still ack
    within 2 s of the arrival: Slack counts 3 s from when it sent the request."""
    import time

    from handlers.replies import WORKING, Answer

    acked: list[tuple[float, dict]] = []

    class ArrivedEarlier:
        arrived = time.monotonic() - 1.6
        response = None

        def __call__(self, **kwargs):
            acked.append((time.monotonic(), kwargs))

    ack = ArrivedEarlier()
    Answer(ack, respond=lambda **_: None, deadline=2.0)
    deadline = time.monotonic() + 2
    while not acked and time.monotonic() < deadline:
        time.sleep(0.01)
    assert acked and acked[0][1]["text"] == WORKING
    assert acked[0][0] - ack.arrived < 2.3  # not 1.6 + 2 s
