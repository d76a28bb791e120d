"""Benchmark a viral-spread burst: 100 declarations at once against a Slack with its real limits.

Starts the sandbox (Slack's rate limits ON: Tier 2 `conversations.create` about 20 a minute,
about one `chat.postMessage` a second per channel, 429 + Retry-After beyond) in this process,
then the bot (`safeguard serve`, its own process) with a playbook whose page clock is due one
second after the declaration (`page: legal`). `--n` signed `/incident declare` commands are
sent from `--senders` threads, and the bench waits until every incident has its page DM, its
channel, its checklist and the page in its channel (or `--timeout`).

It prints, from the time each declaration was sent: time to the incident's first page DM
(p50/p99/max), to its channel, to its checklist, to the page in its channel; the 429s the bot
received per method; when the last page DM and the last channel creation reached Slack; and
the order of the calls (a row per 10 s: how many of each kind). Every page DM of the burst goes
to the one Legal on-call person, whose DM is one channel: Slack lets about one message a second
into it, so 100 pages take about 100 s however well the bot paces itself.

    .venv/bin/python bench/burst.py [--n 100] [--senders 20] [--database-url URL] [--timeout 900]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import ack  # noqa: E402  (the bot subprocess and the signed commands)

LEAD, LEGAL, OPS = "U0LEAD001", "U0LEGAL01", "C0OPS0001"
PLAYBOOK = """\
# The burst benchmark's playbook: Legal is paged one second after the declaration.
id: viral-burst
title: Viral spread burst
severity: sev1
private: true
roles: [incident_lead, legal]
steps:
  - id: contain
    title: Contain the spread
    owner: incident_lead
    timers:
      - {after: 1s, page: legal, basis: "law: bench"}
  - {id: report, title: File the report, owner: incident_lead, after: [contain]}
"""
INC = re.compile(r"INC-(\d+)")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def line(values: list[float], n: int) -> str:
    if not values:
        return f"none of {n}"
    return (f"p50 {pct(values, 50):6.1f} s   p99 {pct(values, 99):6.1f} s   max {max(values):6.1f} s   "
            f"({len(values)}/{n})")


def write_org(workdir: Path) -> tuple[Path, Path]:
    config = yaml.safe_load((ROOT / "bot" / "demo" / "safeguard.yaml").read_text())
    config["roles"]["legal"]["escalation"] = [{"notify": ["slack"], "ack_within": "15m"}]
    config_path = workdir / "safeguard.yaml"
    config_path.write_text(yaml.safe_dump(config))
    playbooks = workdir / "playbooks"
    playbooks.mkdir()
    (playbooks / "viral-burst.yaml").write_text(PLAYBOOK)
    return config_path, playbooks


class Watch:
    """What reached the sandbox, per incident number: first page DM, channel, checklist, page post."""

    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox
        self.dm: dict[int, float] = {}
        self.created: dict[int, float] = {}
        self.checklist: dict[int, float] = {}
        self.page_post: dict[int, float] = {}
        self.channel_of: dict[str, int] = {}
        self.seen = 0

    def poll(self) -> None:
        ws = self.sandbox.state
        with ws.lock:
            calls = ws.calls[self.seen:]
            self.seen += len(calls)
        for call in calls:
            if not call.ok:
                continue
            if call.method == "conversations.create":
                channel = call.response.get("channel") or {}
                found = re.match(r"inc-(\d+)-", channel.get("name", ""))
                if found:
                    number = int(found.group(1))
                    self.channel_of[channel["id"]] = number
                    self.created.setdefault(number, call.at)
            elif call.method == "chat.postMessage":
                channel, text = str(call.args.get("channel")), str(call.args.get("text") or "")
                meta = ack._metadata(call.args)
                if channel == LEGAL:
                    found = INC.search(text)
                    if found:
                        self.dm.setdefault(int(found.group(1)), call.at)
                elif channel in self.channel_of:
                    number = self.channel_of[channel]
                    if meta.get("event_type") == "safeguard_checklist":
                        self.checklist.setdefault(number, call.at)
                    elif "Paging" in text:
                        self.page_post.setdefault(number, call.at)

    def complete(self, n: int) -> bool:
        return all(len(d) >= n for d in (self.dm, self.created, self.checklist, self.page_post))


def declare_all(sandbox, target, n: int, senders: int) -> dict[int, float]:
    """Send the declarations; returns summary number -> time sent (the sandbox clock)."""
    import httpx

    commands = [ack.signed_command(sandbox, f"declare viral-burst Viral spread match {k}")
                for k in range(1, n + 1)]
    sent: dict[int, float] = {}
    with httpx.Client(timeout=30) as client:
        def send(k: int) -> None:
            body, headers = commands[k - 1]
            sent[k] = time.time()
            client.post(target.url, content=body, headers=headers).raise_for_status()

        with ThreadPoolExecutor(senders) as pool:
            list(pool.map(send, range(1, n + 1)))
    return sent


def incident_numbers(database_url: str) -> dict[int, int]:
    """summary number -> incident number (declarations may be numbered in another order)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1)
                           if database_url.startswith("postgresql://") else database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, title FROM incidents")).all()
    engine.dispose()
    out = {}
    for number, title in rows:
        found = re.search(r"match (\d+)", title or "")
        if found:
            out[int(found.group(1))] = number
    return out


def order_table(sandbox, start: float, watch: Watch, bucket: float = 10.0) -> list[str]:
    kinds = ("page DM", "create", "checklist", "page post", "other post", "update", "invite", "pin", "topic",
             "429")
    rows: dict[int, Counter] = {}
    with sandbox.state.lock:
        calls = list(sandbox.state.calls)
    for call in calls:
        if call.at < start:
            continue
        row = rows.setdefault(int((call.at - start) // bucket), Counter())
        if call.http_status == 429:
            row["429"] += 1
            continue
        if not call.ok:
            continue
        method, channel = call.method, str(call.args.get("channel"))
        if method == "chat.postMessage":
            meta = ack._metadata(call.args)
            if channel == LEGAL:
                row["page DM"] += 1
            elif meta.get("event_type") == "safeguard_checklist":
                row["checklist"] += 1
            elif "Paging" in str(call.args.get("text") or ""):
                row["page post"] += 1
            else:
                row["other post"] += 1
        else:
            kind = {"conversations.create": "create", "chat.update": "update", "conversations.invite": "invite",
                    "pins.add": "pin", "conversations.setTopic": "topic"}.get(method)
            if kind:
                row[kind] += 1
    out = ["  seconds  " + "".join(f"{k:>11}" for k in kinds)]
    for index in sorted(rows):
        out.append(f"  {index * bucket:4.0f}-{(index + 1) * bucket:<4.0f}" +
                   "".join(f"{rows[index][k]:>11}" for k in kinds))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    from bot.db.engine import Database
    from sandbox.server import Sandbox

    workdir = Path(tempfile.mkdtemp(prefix="safeguard-bench-burst-"))
    config, playbooks = write_org(workdir)
    database_url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    database = Database(database_url)
    database.upgrade()
    database.dispose()
    # Slack's limits are always on here: a benchmark of a Slack without them measures nothing real.
    with ack.pooled_driver_transport(), Sandbox(signing_secret=ack.SECRET, threads=32, rate_limits=True) as sandbox:
        env = ack.bot_env(sandbox, database_url, 0)
        port = ack.free_port()
        env.update(SAFEGUARD_CONFIG=str(config), SAFEGUARD_PLAYBOOKS=str(playbooks), PORT=str(port))
        script = Path(sys.executable).parent / "safeguard"
        cmd = [str(script)] if script.exists() else [sys.executable, "-c", "from runtime.cli import main; main()"]
        target = ack.spawn("bot", cmd + ["serve", "--host", "127.0.0.1", "--port", str(port)], env, port, workdir)
        try:
            watch = Watch(sandbox)
            start = time.time()
            sent = declare_all(sandbox, target, args.n, args.senders)
            print(f"sent {args.n} declarations in {time.time() - start:.1f} s", flush=True)
            deadline = time.monotonic() + args.timeout
            last_report = time.monotonic()
            while not watch.complete(args.n) and time.monotonic() < deadline:
                time.sleep(0.5)
                watch.poll()
                if time.monotonic() - last_report > 30:
                    last_report = time.monotonic()
                    print(f"  {time.time() - start:5.0f} s: page DMs {len(watch.dm)}, channels {len(watch.created)}, "
                          f"checklists {len(watch.checklist)}, page posts {len(watch.page_post)}", flush=True)
            watch.poll()
            numbers = incident_numbers(database_url)
            sent_at = {numbers[k]: at for k, at in sent.items() if k in numbers}

            def since(found: dict[int, float]) -> list[float]:
                return [found[i] - sent_at[i] for i in sent_at if i in found]

            with sandbox.state.lock:
                calls = list(sandbox.state.calls)
            refused = Counter(c.method for c in calls if c.http_status == 429)
            total = Counter(c.method for c in calls)
            print()
            print(f"burst           {args.n} declarations, {args.senders} senders, Slack's limits ON, "
                  f"database {database_url.split(':')[0]}")
            print(f"first page DM   {line(since(watch.dm), args.n)}")
            print(f"channel         {line(since(watch.created), args.n)}")
            print(f"checklist       {line(since(watch.checklist), args.n)}")
            print(f"page in channel {line(since(watch.page_post), args.n)}")
            if watch.dm and watch.created:
                print(f"last page DM at {max(watch.dm.values()) - start:.1f} s; last channel created at "
                      f"{max(watch.created.values()) - start:.1f} s (from the first declaration)")
            print(f"429s received   {sum(refused.values())} of {len(calls)} calls"
                  + (": " + ", ".join(f"{m} {k}/{total[m]}" for m, k in refused.most_common()) if refused else ""))
            print("order of calls (successful calls per kind, and 429s, per 10 s):")
            print("\n".join(order_table(sandbox, start, watch)))
            print(json.dumps({"pages_p99": pct(since(watch.dm), 99) if watch.dm else None,
                              "checklist_p99": pct(since(watch.checklist), 99) if watch.checklist else None,
                              "ratelimited": sum(refused.values())}))
        finally:
            target.stop()
            if args.keep:
                print(f"kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
