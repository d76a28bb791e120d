"""Benchmark the API's intake: a detection pipeline sends `--matches` declarations over
`--hashes` distinct SHA-256 hashes from `--threads` threads (each with an Idempotency-Key), to a
served bot against the sandbox. Prints declarations answered per second and the p50/p99 answer
time, and checks the outcome: exactly one incident per hash, every other match a sighting.

    .venv/bin/python bench/intake.py [--matches 1000] [--hashes 50] [--threads 4] [--database-url URL …]

By default it runs on SQLite (a fresh file) and then on PostgreSQL in a fresh schema of
$SAFEGUARD_TEST_PG (default postgresql://postgres@127.0.0.1:5432/test, dropped afterwards) when
that server answers. `--database-url` (repeatable) runs on those instead; give each a fresh,
empty schema. Everything listens on 127.0.0.1 and stops by itself."""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SECRET = "bench-signing-secret"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matches", type=int, default=1000)
    parser.add_argument("--hashes", type=int, default=50)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--database-url", action="append", default=None)
    args = parser.parse_args()
    if args.database_url:
        return max(run(args, url) for url in args.database_url)
    code = run(args, f"sqlite:///{tempfile.mkdtemp(prefix='safeguard-intake-')}/bench.db")
    from tests.support import postgres_reachable, postgres_schema

    if postgres_reachable():
        with postgres_schema() as url:
            code = max(code, run(args, url))
    else:
        print("PostgreSQL: not reachable ($SAFEGUARD_TEST_PG); skipped")
    return code


def run(args, url: str) -> int:
    import httpx
    from sqlalchemy import func, select

    from bot import tokens
    from bot.db.engine import Database
    from bot.db.models import Evidence, Incident
    from bot.settings import Settings
    from runtime.app import create_bot
    from runtime.server import BotServer
    from sandbox.server import Sandbox

    database = Database(url)
    database.upgrade()
    database.dispose()
    config = ROOT / "bot" / "demo" / "safeguard.yaml"
    with Sandbox(signing_secret=SECRET) as box:
        settings = Settings(slack_bot_token=box.bot_token, slack_signing_secret=SECRET, slack_api_url=box.api_url,
                            database_url=url, config_path=config, port=0, api_rate=1e6, api_burst=1_000_000)
        bot = create_bot(settings, env={"PD_ROUTING_KEY": "bench0routing0key000000000000000",
                                        "SMTP_URL": "smtp://127.0.0.1:1"})
        server = BotServer(bot, port=0).start()
        box.set_bot_url(server.events_url)
        try:
            token = tokens.create(bot.core.db, "bench", ["declare"])
            base = server.url + "/api/v1/incidents"
            hashes = [hashlib.sha256(f"bench-{i}".encode()).hexdigest() for i in range(args.hashes)]
            matches = [hashes[i % args.hashes] for i in range(args.matches)]
            random.Random(1).shuffle(matches)
            work = list(enumerate(matches))
            times: list[float] = []
            by_status: dict[int, list[float]] = {}
            statuses: Counter = Counter()
            numbers: set[int] = set()
            lock = threading.Lock()

            def send(part):
                with httpx.Client(timeout=60) as client:
                    for j, digest in part:
                        started = time.perf_counter()
                        answer = client.post(base, headers={"Authorization": f"Bearer {token}",
                                                            "Idempotency-Key": f"bench-{j}"},
                                             json={"playbook": "viral-spread", "summary": f"Hash match {j}",
                                                   "evidence": [{"sha256": digest, "content_id": f"up-{j}",
                                                                 "source": "bench"}]})
                        took = time.perf_counter() - started
                        with lock:
                            times.append(took)
                            by_status.setdefault(answer.status_code, []).append(took)
                            statuses[answer.status_code] += 1
                            if answer.status_code in (200, 201):
                                numbers.add(answer.json()["number"])

            threads = [threading.Thread(target=send, args=(work[k::args.threads],)) for k in range(args.threads)]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
            with bot.core.db.read() as session:
                incidents = session.scalar(select(func.count(Incident.id)))
                sightings = session.scalar(select(func.count(Evidence.id)).where(Evidence.sighting.is_(True)))
        finally:
            server.stop()
            bot.stop()
    kind = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(f"{kind}: {args.matches} matches over {args.hashes} hashes from {args.threads} threads in {elapsed:.2f} s")
    print(f"  declarations answered: {args.matches / elapsed:.0f}/s; answer time p50 "
          f"{percentile(times, 50) * 1000:.0f} ms, p99 {percentile(times, 99) * 1000:.0f} ms, "
          f"max {max(times) * 1000:.0f} ms")
    for status, label in ((201, "new incident"), (200, "sighting")):
        if by_status.get(status):
            print(f"  {label} ({status}): p50 {percentile(by_status[status], 50) * 1000:.0f} ms, "
                  f"p99 {percentile(by_status[status], 99) * 1000:.0f} ms")
    print(f"  answers: {dict(statuses)}; incidents {incidents}, sightings {sightings}")
    ok = incidents == args.hashes and sightings == args.matches - args.hashes and len(numbers) == args.hashes
    print("  outcome: " + ("as expected" if ok else "WRONG"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
