"""Benchmark the timeline exports and the hash chain.

Builds (in memory) an incident of 10,000 events with a valid chain, times each export format
and chain.verify, then verifies a chain of 100,000 events.
Targets: each export < 0.5 s; verifying 100,000 events < 1 s.

    .venv/bin/python bench/timeline.py
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

EVENTS = 10_000
VERIFY_EVENTS = 100_000
EXPORT_TARGET = 0.5
VERIFY_TARGET = 1.0

KINDS = ("note", "step_done", "reminder_sent", "page_sent", "page_acked", "member_invited")


def build_rows(n: int, chain) -> list[dict]:
    """n contract dicts with a valid hash chain."""
    start = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    rows = []
    prev = chain.GENESIS
    for seq in range(1, n + 1):
        row = {
            "seq": seq,
            "at": chain.format_at(start + timedelta(seconds=7 * seq)),
            "kind": KINDS[seq % len(KINDS)],
            "actor": f"U{seq % 40:08d}" if seq % 5 else None,
            "text": f"Event {seq}: step ncmec-report checked | note <b>{seq}</b>",
            "data": {"step": "ncmec-report", "case_id": f"CASE-{seq % 97}", "n": seq},
        }
        row["prev_hash"] = prev
        row["hash"] = prev = chain.compute_hash(prev, row)
        rows.append(row)
    return rows


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> int:
    root = Path(__file__).resolve().parents[1]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from bot.timeline import chain
    from bot.timeline.export import FORMATS, render
    from bot.timeline.review import (
        DeadlineView,
        EventView,
        IncidentReview,
        PageView,
        ResponderView,
        StepView,
    )

    build_time, rows = timed(lambda: build_rows(EVENTS, chain))
    events = [EventView.from_json(row) for row in rows]
    t0 = events[0].at + timedelta(minutes=30)
    review = IncidentReview(
        ref="INC-7",
        number=7,
        title="Confirmed CSAM report",
        playbook_id="csam-report",
        playbook_title="Confirmed CSAM report",
        severity="sev1",
        status="resolved",
        declared_at=events[0].at,
        declared_by="U00000001",
        confirmed_at=t0,
        resolved_at=events[-1].at,
        responders=[
            ResponderView(f"U{i:08d}", f"Responder {i}", ["incident_lead"]) for i in range(40)
        ],
        steps=[
            StepView(
                "confirm",
                "Confirm",
                "child_safety_specialist",
                ["U00000002"],
                "done",
                "U00000002",
                t0,
            ),
            StepView(
                "ncmec-report",
                "File the report",
                "incident_lead",
                ["U00000001"],
                "done",
                "U00000001",
                t0 + timedelta(hours=5),
                None,
                {"report_id": "987654321"},
            ),
        ],
        deadlines=[
            DeadlineView(
                "ncmec-report",
                "File the report",
                "remind owner",
                "law: as soon as reasonably possible",
                "confirm",
                t0,
                t0 + timedelta(hours=4),
                t0 + timedelta(hours=5),
                "fired",
            ),
        ],
        pages=[PageView(1, "legal", 1, "clock", t0, t0 + timedelta(minutes=9), "U00000003")],
        events=events,
        generated_at=events[-1].at,
    )

    print(f"built {EVENTS:,} chained events in {build_time:.3f} s")
    failed = False
    render(review, "md")  # warm the template cache (compiling templates is a one-off)
    render(review, "html")
    for fmt in FORMATS:
        seconds, text = timed(lambda fmt=fmt: render(review, fmt))
        ok = seconds < EXPORT_TARGET
        failed |= not ok
        print(
            f"export {fmt:<4} {EVENTS:,} events: {seconds:.3f} s  ({len(text) / 1e6:.1f} MB)"
            f"  target < {EXPORT_TARGET} s {'ok' if ok else 'MISSED'}"
        )

    seconds, verdict = timed(lambda: chain.verify(rows))
    assert verdict.ok, verdict
    print(f"verify {EVENTS:,} events: {seconds:.3f} s")

    build_time, big = timed(lambda: build_rows(VERIFY_EVENTS, chain))
    seconds, verdict = timed(lambda: chain.verify(big))
    assert verdict.ok, verdict
    ok = seconds < VERIFY_TARGET
    failed |= not ok
    print(
        f"verify {VERIFY_EVENTS:,} events: {seconds:.3f} s  target < {VERIFY_TARGET} s "
        f"{'ok' if ok else 'MISSED'}  (built in {build_time:.3f} s)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
