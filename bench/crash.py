"""Crash bench: SIGKILL `safeguard serve` many times while incidents are declared, then count.

The same run as tests/test_crash.py's crash test (tests/crash_support.py), with larger counts:
the sandbox workspace, the PagerDuty Events v2 stand-in, an SMTP stand-in and the bot, all on
127.0.0.1. A workload declares incidents one after another (a reminder 1 s after each, a page
to legal 2 s after it, two escalation levels of 1 s, then the leads are told) while the bot
is SIGKILLed uniformly 0.2-2 s after each start and started again. Then the last bot settles
(every clock fired, the outbox empty) and the bench prints, per database: kills, declarations
sent / acked / lost, and everything people would see twice (or never): channels, checklists,
pins, page DMs per page level and person, reminders per timer, posts per outbox task,
PagerDuty incidents per page, e-mail Message-IDs (and accepted copies) per page level.

    .venv/bin/python bench/crash.py [--kills 60] [--databases sqlite,postgres] [--seed N]
                                    [--max-seconds 600] [--real-lease] [--json FILE] [--strict]

The dispatcher's lease (2 minutes) cannot be set; a killed worker's tasks are taken over when
it runs out. By default the bench ends the dead workers' leases in the database before the
last start (what the two minutes would do); `--real-lease` waits them out instead.
PostgreSQL runs in a fresh schema of $SAFEGUARD_TEST_PG (default
postgresql://postgres@127.0.0.1:5432/test), which is dropped afterwards. `--strict` exits 1
when a target is missed; by default the figures are printed and the exit status is 0.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.crash_support import Clocks, CrashStack, run_crash  # noqa: E402
from tests.support import postgres_reachable, postgres_schema  # noqa: E402

CLOCKS = Clocks(remind_after="1s", page_after="2s", ack_within="1s", first_retry="1s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=60, help="SIGKILLs per database")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--gap", type=float, nargs=2, default=(0.2, 2.0), metavar=("MIN", "MAX"),
                        help="seconds the bot lives after each start before it is killed")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="per database, kills and settling")
    parser.add_argument("--real-lease", action="store_true", help="wait out the 2-minute lease")
    parser.add_argument("--json", type=Path, default=None, help="write the reports here")
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    reports = []
    for kind in [d.strip() for d in args.databases.split(",") if d.strip()]:
        if kind == "postgres" and not postgres_reachable():
            print("[postgres] skipped: not reachable on 127.0.0.1:5432", flush=True)
            continue
        folder = Path(tempfile.mkdtemp(prefix=f"safeguard-crash-{kind}-"))
        began = time.monotonic()
        database = postgres_schema() if kind == "postgres" else nullcontext(f"sqlite:///{folder / 'safeguard.db'}")
        with database as url, CrashStack(folder, url, clocks=CLOCKS) as stack:
            print(f"[{kind}] seed={seed} logs in {folder}", flush=True)
            settle_budget = 160.0 if args.real_lease else 60.0
            report = run_crash(stack, kills=args.kills, seed=seed, database=kind, gap=tuple(args.gap),
                               deadline=began + max(10.0, args.max_seconds - settle_budget),
                               settle_timeout=settle_budget, real_lease=args.real_lease)
            restarts = [a + b for a, b in stack.start_phases[1:]]
            stack.dispose()
        print(report.figures(), flush=True)
        if restarts:
            restarts.sort()
            print(f"  restarts: {len(restarts)}, to healthy p50 {restarts[len(restarts) // 2]:.2f}s "
                  f"max {restarts[-1]:.2f}s", flush=True)
        for name, found in report.problems().items():
            shown = list(found.items())[:10] if isinstance(found, dict) else found[:10]
            print(f"  {name}: {len(found)} {shown}", flush=True)
        reports.append(report)
    if args.json:
        args.json.write_text(json.dumps([r.to_json() for r in reports], indent=1))
    missed = [r for r in reports if r.problems()]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
