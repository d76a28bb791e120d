"""The timeline's hash chain (bot.timeline.chain): verify passes, and tampering is named."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.timeline import chain
from bot.timeline.review import EventView

START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def make_events(n: int = 10) -> list[dict]:
    events = []
    prev = chain.GENESIS
    for seq in range(1, n + 1):
        event = {
            "seq": seq,
            "at": chain.format_at(START + timedelta(minutes=seq)),
            "kind": "note" if seq % 2 else "step_done",
            "actor": f"U{seq:08d}",
            "text": f"event {seq} — ünïcode",
            "data": {"step": f"s{seq}", "nested": {"b": 2, "a": [1, "x"]}},
            "prev_hash": prev,
        }
        event["hash"] = chain.compute_hash(prev, event)
        prev = event["hash"]
        events.append(event)
    return events


def test_a_valid_chain_verifies():
    events = make_events()
    verdict = chain.verify(events)
    assert verdict.ok and verdict.count == 10 and verdict.first_bad_seq is None
    assert events[0]["prev_hash"] == chain.GENESIS
    assert chain.verify([]).ok


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("text", "event 5 (edited)"),
        ("data", {"step": "s5", "nested": {"b": 2, "a": [1, "y"]}}),
        ("at", chain.format_at(START + timedelta(minutes=5, microseconds=1))),
        ("kind", "step_skipped"),
        ("actor", "U99999999"),
        ("actor", None),
    ],
)
def test_altering_one_event_names_its_seq(field, value):
    events = make_events()
    events[4][field] = value
    verdict = chain.verify(events)
    assert not verdict.ok
    assert verdict.first_bad_seq == 5
    assert "hash" in verdict.reason


def test_altering_an_event_and_rehashing_it_is_caught_at_the_next():
    events = make_events()
    events[4]["text"] = "rewritten"
    events[4]["hash"] = chain.compute_hash(events[4]["prev_hash"], events[4])
    verdict = chain.verify(events)
    assert not verdict.ok and verdict.first_bad_seq == 6


def test_deleting_an_event_is_caught():
    events = make_events()
    del events[3]
    verdict = chain.verify(events)
    assert not verdict.ok and verdict.first_bad_seq == 5
    assert "expected event #4" in verdict.reason


def test_deleting_and_renumbering_is_caught():
    events = make_events()
    del events[3]
    for position, event in enumerate(events, start=1):
        event["seq"] = position
    verdict = chain.verify(events)
    assert not verdict.ok and verdict.first_bad_seq == 4
    assert "prev_hash" in verdict.reason


def test_deleting_the_first_event_is_caught():
    verdict = chain.verify(make_events()[1:])
    assert not verdict.ok and verdict.first_bad_seq == 2


def test_reordering_events_is_caught():
    events = make_events()
    events[3], events[4] = events[4], events[3]
    verdict = chain.verify(events)
    assert not verdict.ok and verdict.first_bad_seq == 5

    events = make_events()
    events[3], events[4] = events[4], events[3]
    events[3]["seq"], events[4]["seq"] = 4, 5  # swap the numbers back too
    verdict = chain.verify(events)
    assert not verdict.ok and verdict.first_bad_seq == 4


def test_truncating_the_newest_events_needs_the_head_hash():
    """A chain alone cannot show that its newest events were cut off: compare the head hash
    (and count) with one recorded elsewhere, e.g. in a review or the incident channel."""
    events = make_events()
    head = events[-1]["hash"]
    truncated = events[:-2]
    assert chain.verify(truncated).ok
    assert truncated[-1]["hash"] != head


def test_hash_covers_canonical_json_not_key_order():
    event = make_events(1)[0]
    reordered = {key: copy.deepcopy(event[key]) for key in reversed(list(event))}
    reordered["data"] = {"nested": {"a": [1, "x"], "b": 2}, "step": "s1"}
    assert chain.compute_hash(chain.GENESIS, reordered) == event["hash"]


def test_format_at_is_utc_with_microseconds():
    assert chain.format_at(datetime(2025, 3, 3, 9, 0)) == "2025-03-03T09:00:00.000000Z"
    plus_two = datetime(2025, 3, 3, 13, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    assert chain.format_at(plus_two) == "2025-03-03T11:00:00.000005Z"


def test_event_views_verify_through_to_json():
    views = [EventView.from_json(event) for event in make_events()]
    assert chain.verify([view.to_json() for view in views]).ok
