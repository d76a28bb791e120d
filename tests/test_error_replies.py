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
