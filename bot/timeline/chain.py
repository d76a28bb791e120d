"""The hash chain that makes a timeline tamper-evident.

Each event's hash is SHA-256 over the previous event's hash and the event's canonical JSON
(sorted keys, no whitespace, UTF-8). Changing any field of any event, or removing or
reordering events, breaks every hash from that point on. Deleting the newest events leaves a
shorter chain that is still intact; an anchor (an event's `seq:hash` kept outside the database,
as the bot posts in the channel on close and with every export) catches that too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
HASHED_FIELDS = ("seq", "at", "kind", "actor", "text", "data")


def format_at(at: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a Z, the one spelling that is hashed and exported."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(event: dict[str, Any]) -> bytes:
    body = {name: event[name] for name in HASHED_FIELDS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute_hash(prev_hash: str, event: dict[str, Any]) -> str:
    digest = hashlib.sha256(prev_hash.encode("ascii"))
    digest.update(b"\n")
    digest.update(canonical(event))
    return digest.hexdigest()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    count: int
    first_bad_seq: int | None = None
    reason: str = ""


def verify(events: list[dict[str, Any]]) -> Verdict:
    """Check a timeline (oldest first, each with seq/at/kind/actor/text/data/prev_hash/hash)."""
    prev = GENESIS
    for expected_seq, event in enumerate(events, start=1):
        seq = event["seq"]
        if seq != expected_seq:
            return Verdict(False, len(events), seq, f"expected event #{expected_seq}, found #{seq}")
        if event["prev_hash"] != prev:
            return Verdict(False, len(events), seq, "prev_hash does not match the previous event")
        if compute_hash(prev, event) != event["hash"]:
            return Verdict(False, len(events), seq, "hash does not match the event's contents")
        prev = event["hash"]
    return Verdict(True, len(events))


def anchor(event: dict[str, Any]) -> str:
    """`seq:hash`, what `safeguard verify --anchor` takes."""
    return f"{event['seq']}:{event['hash']}"


def check_anchor(events: list[dict[str, Any]], seq: int, expected_hash: str) -> Verdict | None:
    """None when event `seq` is present with `expected_hash`; else what is wrong."""
    event = next((e for e in events if e["seq"] == seq), None)
    if event is None:
        last = events[-1]["seq"] if events else 0
        return Verdict(False, len(events), seq, f"the timeline ends at #{last} but the anchor names #{seq}: "
                                                "events were removed from its end")
    if event["hash"] != expected_hash.lower():
        return Verdict(False, len(events), seq, "the event's hash differs from the anchor")
    return None
