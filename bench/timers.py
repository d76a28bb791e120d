"""Benchmark the durable timers: 10,000 reminders across 1,000 incidents, due over one minute.

Starts the sandbox (the Slack stand-in, with Slack's rate limits on) in this process, declares
`--incidents` incidents with the core's own `declare()` (a playbook without clocks of its own),
gives each a channel and a pinned checklist in the sandbox as if provisioning had run, arms
`--timers` reminders with the core's `add_timer()` (an hour away), starts the bot — by default
`--replicas` real `safeguard serve`-like processes sharing the database (`--in-process`: one,
in this process) — and then moves the reminders to be due at random moments within `--window`
seconds starting `--lead` seconds later. Each firing posts a reminder into the incident's
channel in the sandbox and redraws its checklist, as in production.

It prints the firing rate, the lateness of each firing (`fired_at - due_at`: p50, p99, max),
the timers fired by each replica, the lateness of the reminder reaching the sandbox (the
`reminder_sent` event), the database load (SQL statements and commits the bots executed,
counted with a SQLAlchemy event, per second of the window and per timer), the checklist redraws
still queued (Slack lets 50 `chat.update` a minute), the database size and rows, and the bots'
resident memory (psutil, the largest) and CPU. Targets: firing p99 < 1 s, max < 2 s, memory <
300 MB. It waits for the timers and the reminders, not for the redraws.

    .venv/bin/python bench/timers.py [--timers 10000] [--incidents 1000] [--window 60]
        [--replicas 1] [--database-url postgresql://…] [--in-process] [--strict]

The default database is a fresh SQLite file in a temporary folder; with `--database-url` the
tables are created (migrations) in that database, which should be empty (for PostgreSQL put
a fresh schema first on the search_path, e.g. `…?options=-csearch_path%3Dbench`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SECRET = "bench-signing-secret"
LEAD, LEGAL = "U0LEAD001", "U0LEGAL01"
CONFIG = ROOT / "bot" / "demo" / "safeguard.yaml"
PLAYBOOK = """\
# The timer benchmark's playbook: no clocks of its own (bench/timers.py arms them).
id: bench-quiet
title: Timer benchmark
severity: sev3
private: true
roles: [incident_lead, legal]
steps:
  - {id: report, title: File the report, owner: incident_lead}
"""
TARGET_P99, TARGET_MAX, TARGET_MB = 1.0, 2.0, 300.0


# ---------------------------------------------------------------------------- the bot side


def count_statements(engine) -> dict[str, int]:
    """Count every SQL statement the engine executes (and the commits)."""
    from sqlalchemy import event

    counts = {"statements": 0, "commits": 0}

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(*_args, **_kwargs) -> None:
        counts["statements"] += 1

    @event.listens_for(engine, "commit")
    def _commit(*_args) -> None:
        counts["commits"] += 1

    return counts


def write_stats_forever(counts: dict[str, int], path: Path) -> None:
    def loop() -> None:
        while True:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({**counts, "at": time.time()}))
            tmp.replace(path)
            time.sleep(0.5)

    threading.Thread(target=loop, daemon=True, name="bench-stats").start()


def serve(stats_path: Path) -> None:
    """`--serve STATS`: what `safeguard serve` runs, plus a statement counter (the subprocess)."""
    import logging

    from bot.settings import Settings
    from runtime.app import create_bot
    from runtime.server import BotServer

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    bot = create_bot(Settings.from_env())
    write_stats_forever(count_statements(bot.core.db.engine), stats_path)
    server = BotServer(bot, host="127.0.0.1", port=bot.settings.port)
    signal.signal(signal.SIGTERM, lambda *_: server.stop_soon())
    print(f"Listening on {server.url}/slack/events", flush=True)
    try:
        server.serve_forever()
    finally:
        bot.stop()


# ---------------------------------------------------------------------------- setup


def settings_for(database_url: str, playbooks: Path, sandbox=None, port: int = 0):
    from bot.settings import Settings

    values = dict(database_url=database_url, config_path=CONFIG, playbooks_dir=playbooks, port=port)
    if sandbox is not None:
        values.update(slack_bot_token=sandbox.bot_token, slack_signing_secret=SECRET, slack_api_url=sandbox.api_url)
    return Settings(**values)


def declare_incidents(core, sandbox, n: int) -> None:
    """`n` incidents declared with the core, then given a channel and a pinned checklist in the
    sandbox as if provisioning had run (so the bench measures timers, not channel creation)."""
    from sqlalchemy import update

    from bot.clocks.now import utcnow
    from bot.db.models import Incident, Participant, Task
    from bot.incidents.declare import declare

    core.dispatcher.kick = lambda: None  # this core only writes rows; the bot does the work
    ws = sandbox.state
    for number in range(1, n + 1):
        declare(core, playbook_id="bench-quiet", summary=f"Timer bench {number}", actor=LEAD, channel_id="C0OPS0001")
    with core.db.tx() as session:
        now = utcnow()
        for incident in session.query(Incident).order_by(Incident.id):
            channel = ws.add_channel(incident.channel_name, is_private=True, members=[ws.bot_user_id, LEAD, LEGAL])
            checklist = ws.add_message(ws.bot_message(channel.id, text=f"INC-{incident.id} checklist"))
            channel.pins.append(checklist.ts)
            incident.channel_id, incident.checklist_ts = channel.id, checklist.ts
            incident.checklist_pinned = incident.topic_set = True
            incident.provisioned_at = now
        session.execute(update(Participant).values(invited_at=now))
        session.execute(update(Task).where(Task.kind == "provision").values(state="done", done_at=now))


def arm_timers(core, n_timers: int, n_incidents: int, start: datetime, window: float, seed: int = 7) -> None:
    """`n_timers` reminders spread over the incidents, due at random within the window."""
    rng = random.Random(seed)
    per = [n_timers // n_incidents + (1 if i < n_timers % n_incidents else 0) for i in range(n_incidents)]
    for first in range(0, n_incidents, 50):  # 50 incidents a transaction
        with core.db.tx() as session:
            for number, count in enumerate(per[first:first + 50], start=first + 1):
                _arm_incident(core, session, number, count, rng, start, window)


def shift_timers(core, by: timedelta) -> None:
    """Move every pending reminder's due time by `by` (one executemany)."""
    from sqlalchemy import bindparam, select, update

    from bot.db.models import Timer

    with core.db.tx() as session:
        rows = session.execute(select(Timer.id, Timer.due_at).where(Timer.kind == "remind", Timer.state == "pending"))
        moved = [{"tid": tid, "due": due + by} for tid, due in rows]
        session.connection().execute(update(Timer).where(Timer.id == bindparam("tid")).values(due_at=bindparam("due")),
                                     moved)


def _arm_incident(core, session, number: int, count: int, rng, start: datetime, window: float) -> None:
    from bot.clocks.arming import add_timer
    from bot.db.models import Incident
    from bot.timeline.store import lock_incident

    lock_incident(session, number)
    incident = session.get(Incident, number)
    for _ in range(count):
        due = start + timedelta(seconds=rng.uniform(0, window))
        add_timer(core, session, incident, kind="remind", due=due, step_id="report", target="owner",
                  spec={"after": "bench", "from": "bench", "basis": "bench"}, text="Bench reminder")


# ---------------------------------------------------------------------------- measuring


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def lateness(core) -> tuple[list[float], list[float]]:
    from sqlalchemy import select

    from bot.db.models import TimelineEvent, Timer

    with core.db.read() as session:
        due = {}
        fired = []
        for timer_id, due_at, fired_at in session.execute(
                select(Timer.id, Timer.due_at, Timer.fired_at).where(Timer.kind == "remind", Timer.state == "fired")):
            due[timer_id] = due_at
            fired.append((fired_at - due_at).total_seconds())
        delivered = []
        for at, data in session.execute(select(TimelineEvent.at, TimelineEvent.data)
                                        .where(TimelineEvent.kind == "reminder_sent")):
            if data.get("timer") in due:
                delivered.append((at - due[data["timer"]]).total_seconds())
    return fired, delivered


def db_size(core, database_url: str) -> tuple[str, dict[str, int]]:
    from sqlalchemy import func, select, text

    from bot.db.engine import sqlite_path
    from bot.db.models import Incident, Task, TimelineEvent, Timer

    with core.db.read() as session:
        rows = {model.__tablename__: session.scalar(select(func.count()).select_from(model))
                for model in (Incident, Timer, Task, TimelineEvent)}
        if core.db.is_sqlite:
            path = sqlite_path(database_url)
            size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
            what = f"{size / 1e6:.1f} MB (SQLite file + WAL)"
        else:
            size = session.scalar(text("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                                       "JOIN pg_namespace n ON n.oid = c.relnamespace "
                                       "WHERE n.nspname = current_schema() AND c.relkind = 'r'"))
            what = f"{float(size or 0) / 1e6:.1f} MB (tables and indexes of the schema)"
    return what, rows


def pending_work(core) -> tuple[int, int]:
    """Timers still to fire, and reminders still to post (checklist redraws are not waited for:
    under Slack's Tier 3 limit for chat.update, 50 a minute, a thousand of them take 20 minutes)."""
    from sqlalchemy import func, select

    from bot.db.models import Task, Timer

    with core.db.read() as session:
        timers = session.scalar(select(func.count(Timer.id)).where(Timer.state == "pending", Timer.kind == "remind"))
        tasks = session.scalar(select(func.count(Task.id)).where(
            Task.state.in_(("pending", "running")), Task.kind.in_(("post", "channel_post"))))
    return timers, tasks


def fired_by(core) -> list[int]:
    from collections import Counter

    from sqlalchemy import select

    from bot.db.models import Timer

    with core.db.read() as session:
        counts = Counter(session.scalars(select(Timer.fired_by).where(Timer.kind == "remind", Timer.state == "fired")))
    return sorted(counts.values(), reverse=True)


def firing_rate(core) -> float:
    from sqlalchemy import func, select

    from bot.db.models import Timer

    with core.db.read() as session:
        count, first_due, last_fired = session.execute(select(
            func.count(Timer.id), func.min(Timer.due_at), func.max(Timer.fired_at))
            .where(Timer.kind == "remind", Timer.state == "fired")).one()
    if not count or first_due is None or last_fired is None:
        return 0.0
    return count / max((last_fired - first_due).total_seconds(), 0.001)


def queued_redraws(core) -> int:
    from sqlalchemy import func, select

    from bot.db.models import Task

    with core.db.read() as session:
        return session.scalar(select(func.count(Task.id)).where(
            Task.state.in_(("pending", "running")), Task.kind == "refresh_checklist"))


# ---------------------------------------------------------------------------- the bench


class BotProcess:
    def __init__(self, sandbox, database_url: str, playbooks: Path, workdir: Path, name: str = "bot") -> None:
        self.stats = workdir / f"{name}-stats.json"
        self.log_path = workdir / f"{name}.log"
        self.log = self.log_path.open("wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SAFEGUARD_"))}
        env.update(SLACK_BOT_TOKEN=sandbox.bot_token, SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=sandbox.api_url,
                   DATABASE_URL=database_url, SAFEGUARD_CONFIG=str(CONFIG), SAFEGUARD_PLAYBOOKS=str(playbooks),
                   PORT="0", PD_ROUTING_KEY="bench0routing0key000000000000000", SMTP_URL="smtp://127.0.0.1:1",
                   PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve", str(self.stats)],
                                     cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("Listening on "):
            self.proc.kill()
            raise SystemExit(f"the bot did not start: see {self.log_path}\n{self.log_path.read_text()[-3000:]}")
        self.pid = self.proc.pid

    def counts(self) -> dict[str, int]:
        try:
            return json.loads(self.stats.read_text())
        except (OSError, ValueError):
            return {"statements": 0, "commits": 0}

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


class Replicas:
    """The bots as one: statement counts summed, memory (RSS) and CPU summed over the processes."""

    def __init__(self, bots) -> None:
        import psutil

        self.bots = bots
        self.pid = ",".join(str(b.pid) for b in bots)
        self.processes = [psutil.Process(b.pid) for b in bots]

    def counts(self) -> dict[str, int]:
        counts = [b.counts() for b in self.bots]
        return {k: sum(c.get(k, 0) for c in counts) for k in ("statements", "commits")}

    def memory_info(self):
        import types

        return types.SimpleNamespace(rss=max(p.memory_info().rss for p in self.processes))

    def cpu_times(self):
        import types

        times = [p.cpu_times() for p in self.processes]
        return types.SimpleNamespace(user=sum(t.user for t in times), system=sum(t.system for t in times))

    def stop(self) -> None:
        for b in self.bots:
            b.stop()


class InProcessBot:
    def __init__(self, sandbox, database_url: str, playbooks: Path) -> None:
        from runtime.app import create_bot
        from runtime.server import BotServer

        env = {"PD_ROUTING_KEY": "bench0routing0key000000000000000", "SMTP_URL": "smtp://127.0.0.1:1"}
        self.bot = create_bot(settings_for(database_url, playbooks, sandbox), env=env)
        self._counts = count_statements(self.bot.core.db.engine)
        self.server = BotServer(self.bot, port=0).start()
        self.pid = os.getpid()

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    def stop(self) -> None:
        self.server.stop()


def run(args) -> int:

    from bot.db.engine import Database
    from runtime.app import build_core
    from sandbox.server import Sandbox

    workdir = Path(tempfile.mkdtemp(prefix="safeguard-bench-timers-"))
    playbooks = workdir / "playbooks"
    playbooks.mkdir()
    (playbooks / "bench-quiet.yaml").write_text(PLAYBOOK)
    database_url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    database = Database(database_url)
    database.upgrade()
    database.dispose()

    sandbox = Sandbox(signing_secret=SECRET, emit_events=False, threads=32, rate_limits=True).start()
    core = build_core(settings_for(database_url, playbooks), slack=False, migrate=False)
    bot = None
    try:
        t = time.monotonic()
        declare_incidents(core, sandbox, args.incidents)
        print(f"declared {args.incidents} incidents in {time.monotonic() - t:.1f} s", flush=True)
        # Armed before the bots start (a loaded machine must not have the arming compete with
        # the firing), due an hour away; then moved to `--lead` seconds after the bots are up.
        t = time.monotonic()
        far = datetime.now(UTC) + timedelta(hours=1)
        arm_timers(core, args.timers, args.incidents, far, args.window)
        print(f"armed {args.timers} timers in {time.monotonic() - t:.1f} s", flush=True)
        if args.in_process:
            bots = [InProcessBot(sandbox, database_url, playbooks)]
        else:
            bots = [BotProcess(sandbox, database_url, playbooks, workdir, f"bot{n}") for n in range(args.replicas)]
        bot = Replicas(bots)
        process = bot
        start = datetime.now(UTC) + timedelta(seconds=args.lead)
        shift_timers(core, start - far)
        print(f"timers due from {start:%H:%M:%S} over {args.window:g} s", flush=True)
        if datetime.now(UTC) > start:
            print("WARNING: the timers were moved after the first was due: raise --lead", flush=True)

        rss_max, samples = 0, []
        before = after = None
        deadline = start + timedelta(seconds=args.window + args.grace)
        while True:
            now = datetime.now(UTC)
            rss = process.memory_info().rss
            rss_max = max(rss_max, rss)
            if before is None and now >= start:
                before = (time.monotonic(), bot.counts(), process.cpu_times())
            timers, tasks = pending_work(core)
            samples.append((now, timers, tasks, rss))
            if now >= start and timers == 0 and tasks == 0:
                break
            if now > deadline:
                print(f"WARNING: gave up waiting: {timers} timers and {tasks} tasks still to do", flush=True)
                break
            time.sleep(0.5)
        time.sleep(1.0)  # the stats file is written every 0.5 s
        after = (time.monotonic(), bot.counts(), process.cpu_times())

        fired, delivered = lateness(core)
        size, rows = db_size(core, database_url)
        elapsed = after[0] - before[0]
        statements = after[1]["statements"] - before[1]["statements"]
        commits = after[1]["commits"] - before[1]["commits"]
        cpu = (after[2].user + after[2].system) - (before[2].user + before[2].system)
        ok_p99 = bool(fired) and pct(fired, 99) < TARGET_P99
        ok_max = bool(fired) and max(fired) < TARGET_MAX
        ok_mem = rss_max / 2**20 < TARGET_MB

        def line(values: list[float]) -> str:
            if not values:
                return "none"
            return (f"p50 {pct(values, 50) * 1000:.0f} ms   p99 {pct(values, 99) * 1000:.0f} ms   "
                    f"max {max(values) * 1000:.0f} ms   (n={len(values)})")

        print()
        print(f"database        {core.db.engine.url.get_backend_name()}  "
              f"({'in-process bot' if args.in_process else 'bot process'} pid {bot.pid})")
        print(f"replicas        {len(bot.bots)}; timers fired per replica {fired_by(core)}")
        print(f"timers fired    {len(fired)} / {args.timers}")
        print(f"fire rate       {firing_rate(core):.0f} timers/s (fired / (last firing - first due))")
        print(f"fire lateness   {line(fired)}   [target p99 < {TARGET_P99:g} s, max < {TARGET_MAX:g} s: "
              f"{'ok' if ok_p99 and ok_max else 'MISSED'}]")
        print(f"posted lateness {line(delivered)}   (reminder in the sandbox channel)")
        print(f"database load   {statements} statements, {commits} commits in {elapsed:.1f} s = "
              f"{statements / elapsed:.0f} statements/s, {commits / elapsed:.0f} commits/s, "
              f"{statements / max(len(fired), 1):.1f} statements and {commits / max(len(fired), 1):.2f} commits per timer")
        print(f"checklists      {queued_redraws(core)} redraws still queued (chat.update is Tier 3: 50 a minute)")
        print(f"database size   {size}; rows {rows}")
        print(f"bot memory      max RSS (largest replica) {rss_max / 2**20:.0f} MB   [target < {TARGET_MB:g} MB: "
              f"{'ok' if ok_mem else 'MISSED'}]")
        print(f"bot CPU         {cpu:.1f} s in {elapsed:.1f} s ({100 * cpu / elapsed:.0f}% of one core)")
        refused = sum(1 for c in sandbox.calls if c.http_status == 429)
        print(f"sandbox calls   {len(sandbox.calls)} Web API calls, {refused} answered 429 (Slack's limits on)")
        if args.keep:
            print(f"kept {workdir}")
        return 0 if (ok_p99 and ok_max and ok_mem) or not args.strict else 1
    finally:
        if bot is not None:
            bot.stop()
        core.db.dispose()
        sandbox.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timers", type=int, default=10_000)
    parser.add_argument("--incidents", type=int, default=1_000)
    parser.add_argument("--window", type=float, default=60.0, help="seconds over which the timers are due")
    parser.add_argument("--lead", type=float, default=None,
                        help="seconds from the bots' start to the first due time (default: enough to move them)")
    parser.add_argument("--grace", type=float, default=60.0, help="seconds to wait after the window")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--in-process", action="store_true", help="run the bot in this process")
    parser.add_argument("--replicas", type=int, default=1, help="bot processes sharing the database (PostgreSQL)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (database, bot log)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    if args.lead is None:  # time to move them all (the timers are armed before the bots start)
        sqlite = args.database_url is None or args.database_url.startswith("sqlite")
        args.lead = 3.0 + args.timers * (0.00005 if sqlite else 0.0002)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
