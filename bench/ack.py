"""Benchmark time-to-ack and time-to-checklist of `/incident declare` under concurrent load.

Starts the sandbox (the Slack stand-in) in this process with `--latency-ms` added to every
Web API call, then two servers, each in its own process by default (so neither shares a GIL
with the load generator or the sandbox):

- the bot: `safeguard serve` against the sandbox, with its own database;
- a bare Bolt app behind the same stack (Bolt's Flask adapter + waitress, 32 server threads,
  process_before_response=False, a 32-worker listener executor) whose listener only acks.

Each round sends `--n` Slack-signed `/incident declare` slash commands at once (one thread
each, released together by a barrier) to the bare app, then to the bot, and measures:

- time-to-ack: from sending the signed command until its HTTP answer is read;
- time-to-checklist (bot only): from sending the command until the sandbox recorded the
  chat.postMessage whose metadata event_type is `safeguard_checklist` for that incident.

Targets (each round): ack p99 <= 1.5 x the bare app's and <= 1 s; checklist p99 < 2 s.
One uncounted warm-up declaration goes to each server first (Bolt's one-time auth.test,
first connections); between rounds the bench waits until the bot is quiet. Percentiles are
nearest-rank: with 20 samples p99 is the slowest.

    .venv/bin/python bench/ack.py [--n 20] [--rounds 3] [--latency-ms 150] [--database-url URL]

The load generator sends real signed HTTP requests from its own threads; the sandbox's event
deliveries go through one pooled HTTP client (see pooled_driver_transport). `--in-process`
runs both servers in this process instead. `--strict` exits 1 when a target is missed
(default: report and exit 0). Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SECRET = "bench-signing-secret"
DECLARER = "U0LEAD001"
CHANNEL = "C0OPS0001"
PLAYBOOK = "csam-report"
CHECKLIST_EVENT = "safeguard_checklist"
SERVER_THREADS = 32
LISTENER_WORKERS = 32
ACK_TARGET = 1.0
ACK_RATIO = 1.5
CHECKLIST_TARGET = 2.0


# ---------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_bare_web(signing_secret: str, api_url: str | None = None):
    """The bare app: what the bot's HTTP stack costs with a listener that only acks.

    Its Web API client points at the sandbox, like the bot's: Bolt's single-team authorization
    calls auth.test (once, then cached) before the first listener runs."""
    from concurrent.futures import ThreadPoolExecutor

    from flask import Flask, request
    from slack_bolt import App
    from slack_bolt.adapter.flask import SlackRequestHandler
    from slack_sdk import WebClient

    bolt = App(
        token="xoxb-sandbox-token", signing_secret=signing_secret,
        client=WebClient(token="xoxb-sandbox-token", base_url=api_url or "https://slack.com/api/"),
        token_verification_enabled=False, process_before_response=False,
        listener_executor=ThreadPoolExecutor(max_workers=LISTENER_WORKERS, thread_name_prefix="bare-listener"),
    )

    @bolt.command("/incident")
    def only_ack(ack) -> None:
        ack(response_type="ephemeral", text="ok")

    web = Flask("bare")
    handler = SlackRequestHandler(bolt)

    @web.post("/slack/events")
    def slack_events():
        return handler.handle(request)

    @web.get("/healthz")
    def healthz():
        return {"ok": True}

    return web


def serve_bare(port: int, api_url: str | None) -> None:
    """`--serve-bare PORT --api-url URL`: the bare app in the foreground (the subprocess)."""
    from waitress import serve

    sys.setswitchinterval(0.001)  # the same interpreter setting as the bot's server (runtime/server.py)
    serve(build_bare_web(SECRET, api_url), host="127.0.0.1", port=port, threads=SERVER_THREADS,
          channel_timeout=30, connection_limit=1000, ident="bare")


@dataclass
class Target:
    name: str
    url: str  # .../slack/events
    stop: Any
    log: Path | None = None
    pid: int | None = None  # the server's process (None when in-process)


def wait_healthy(url: str, proc: subprocess.Popen | None, log: Path | None, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}; see {log}:\n{_tail(log)}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} not healthy after {timeout:.0f} s; see {log}:\n{_tail(log)}")


def _tail(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-30:])


def spawn(name: str, cmd: list[str], env: dict[str, str], port: int, workdir: Path) -> Target:
    log = workdir / f"{name}.log"
    out = log.open("wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        out.close()

    try:
        wait_healthy(base + "/healthz", proc, log)
    except BaseException:
        stop()
        raise
    return Target(name, base + "/slack/events", stop, log, proc.pid)


def bot_env(sandbox, database_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SAFEGUARD_"))}
    env.update(
        SLACK_BOT_TOKEN=sandbox.bot_token, SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=sandbox.api_url,
        DATABASE_URL=database_url, SAFEGUARD_CONFIG=str(ROOT / "bot" / "demo" / "safeguard.yaml"),
        PORT=str(port), PD_ROUTING_KEY="bench0routing0key000000000000000", SMTP_URL="smtp://127.0.0.1:1",
        PYTHONUNBUFFERED="1",
    )
    return env


def start_bot_subprocess(sandbox, database_url: str, workdir: Path) -> Target:
    port = free_port()
    script = Path(sys.executable).parent / "safeguard"
    cmd = [str(script)] if script.exists() else [sys.executable, "-c", "from runtime.cli import main; main()"]
    return spawn("bot", cmd + ["serve", "--host", "127.0.0.1", "--port", str(port)],
                 bot_env(sandbox, database_url, port), port, workdir)


def start_bare_subprocess(sandbox, workdir: Path) -> Target:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return spawn("bare", [sys.executable, str(Path(__file__).resolve()), "--serve-bare", str(port),
                          "--api-url", sandbox.api_url], env, port, workdir)


def start_bot_in_process(sandbox, database_url: str) -> Target:
    from bot.settings import Settings
    from runtime.app import create_bot
    from runtime.server import BotServer

    settings = Settings(slack_bot_token=sandbox.bot_token, slack_signing_secret=SECRET,
                        slack_api_url=sandbox.api_url, database_url=database_url,
                        config_path=ROOT / "bot" / "demo" / "safeguard.yaml", port=0)
    env = {"PD_ROUTING_KEY": "bench0routing0key000000000000000", "SMTP_URL": "smtp://127.0.0.1:1"}
    server = BotServer(create_bot(settings, env=env), port=0, threads=SERVER_THREADS).start()
    return Target("bot", server.events_url, server.stop)


def start_bare_in_process(sandbox) -> Target:
    from waitress.server import create_server

    server = create_server(build_bare_web(SECRET, sandbox.api_url), host="127.0.0.1", port=0, threads=SERVER_THREADS,
                           channel_timeout=30, connection_limit=1000, ident="bare")
    thread = threading.Thread(target=server.run, name="bare-http", daemon=True)
    thread.start()

    def stop() -> None:
        server.close()
        thread.join(timeout=5)

    return Target("bare", f"http://127.0.0.1:{server.effective_port}/slack/events", stop)


# ---------------------------------------------------------------------------- load


@dataclass
class Sample:
    sent_at: float  # wall clock (the sandbox records calls in wall-clock time)
    ack: float | None = None
    status: int | None = None
    incident: str | None = None  # the declaration's summary, found again in its checklist
    checklist: float | None = None
    error: str | None = None


@dataclass
class Round:
    target: str
    number: int
    samples: list[Sample] = field(default_factory=list)

    def acks(self) -> list[float]:
        return [s.ack for s in self.samples if s.ack is not None and s.error is None]

    def checklists(self) -> list[float]:
        return [s.checklist for s in self.samples if s.checklist is not None]

    def errors(self) -> int:
        return sum(1 for s in self.samples if s.error is not None)


@contextmanager
def pooled_driver_transport() -> Iterator[None]:
    """The sandbox sends Events API callbacks (member_joined_channel after each invite) with
    `httpx.post`, which builds a new client, ~20 ms of CPU, per request. On a small machine
    that CPU is taken from the bot under test; real Slack's is not. For the benchmark the
    driver posts through one pooled client instead: same requests, same bytes."""
    import types

    import httpx

    from sandbox import driver

    client = httpx.Client(limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
    original = driver.httpx
    driver.httpx = types.SimpleNamespace(post=client.post, TimeoutException=httpx.TimeoutException,
                                         HTTPError=httpx.HTTPError)
    try:
        yield
    finally:
        driver.httpx = original
        client.close()


SUMMARY = re.compile(r"Bench round \d+ case \d+")


def signed_command(sandbox, text: str) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a slash command as Slack sends it (the driver's payload and
    signature), built before the clock starts."""
    from urllib.parse import urlencode

    from sandbox import payloads

    ws = sandbox.state
    with ws.lock:
        channel = ws.channel(CHANNEL)
        form = payloads.command_form(
            ws, user=DECLARER, channel=channel, command="/incident", text=text,
            response_url=ws.mint_response_url(sandbox.base_url, channel=channel.id, user=DECLARER,
                                              kind="command"),
            trigger_id=ws.mint_trigger(DECLARER),
        )
    body = urlencode(form).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": sandbox.driver.sign(body, timestamp),
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
    }
    return body, headers


def fire(sandbox, target: Target, n: int, round_no: int, expect_incident: bool) -> Round:
    """n signed slash commands at once, one thread each.

    Each thread builds its signed request and its HTTP client before the barrier, so the
    time measured is the server's: from sending the request to reading its answer. (The
    driver's `command()` builds an httpx client per call, ~20 ms of CPU each, which 20
    threads queue for on the GIL: that would measure the load generator, not the server.)"""
    import httpx

    sandbox.set_bot_url(target.url)
    result = Round(target.name, round_no, [Sample(0.0) for _ in range(n)])
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        sample = result.samples[i]
        summary = f"Bench round {round_no} case {i + 1}"
        body, headers = signed_command(sandbox, f"declare {PLAYBOOK} {summary}")
        with httpx.Client(timeout=10.0) as client:
            try:
                barrier.wait(timeout=30)
            except threading.BrokenBarrierError:
                sample.error = "barrier"
                return
            sample.sent_at = time.time()
            started = time.perf_counter()
            try:
                response = client.post(target.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                sample.error = f"{type(exc).__name__}: {exc}"
                return
            sample.ack, sample.status = time.perf_counter() - started, response.status_code
        if response.status_code != 200:
            sample.error = f"HTTP {response.status_code}: {response.text[:200]}"
        elif sample.ack > 3.0:
            sample.error = "answered after Slack's 3 s deadline"
        elif expect_incident:
            # The bot acks at once and confirms INC-N on the response_url; the checklist it
            # then posts carries the summary, which is how the sample finds its incident.
            sample.incident = summary

    threads = [threading.Thread(target=one, args=(i,), name=f"load-{i}") for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return result


def _metadata(args: dict[str, Any]) -> dict[str, Any]:
    meta = args.get("metadata")
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except ValueError:
            return {}
    return meta if isinstance(meta, dict) else {}


class ChecklistWatch:
    """declaration summary -> wall-clock time the sandbox answered its checklist's
    chat.postMessage (`Call.at`), read incrementally so polling stays cheap and holds the
    sandbox lock briefly."""

    def __init__(self, sandbox) -> None:
        self.sandbox = sandbox
        self.seen = 0
        self.posted: dict[str, float] = {}

    def poll(self) -> dict[str, float]:
        ws = self.sandbox.state
        with ws.lock:
            calls = ws.calls[self.seen:]
            self.seen += len(calls)
        for call in calls:
            if call.method != "chat.postMessage" or not call.ok:
                continue
            meta = _metadata(call.args)
            if meta.get("event_type") == CHECKLIST_EVENT:
                found = SUMMARY.search(json.dumps(call.args.get("blocks")))
                if found:
                    self.posted.setdefault(found.group(0), call.at)
        return self.posted


def collect_checklists(watch: ChecklistWatch, rnd: Round, timeout: float) -> None:
    wanted = {s.incident for s in rnd.samples if s.incident is not None}
    deadline = time.monotonic() + timeout
    while True:
        posted = watch.poll()
        if wanted <= posted.keys() or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    for s in rnd.samples:
        if s.incident in posted:
            s.checklist = posted[s.incident] - s.sent_at
        elif s.incident is not None:
            s.error = s.error or f"no checklist for {s.incident!r} within {timeout:.0f} s"


def quiesce(sandbox, quiet: float = 1.0, timeout: float = 30.0) -> None:
    """Wait until the bot has stopped calling Slack and the sandbox has stopped sending it
    events (invites, pins, member_joined_channel of the last round)."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        with sandbox.state.lock:
            count = len(sandbox.state.calls) + sum(len(d.attempts) + 1 for d in sandbox.state.deliveries)
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.05)


# ---------------------------------------------------------------------------- report


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p99 of 20 samples is the slowest)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)]


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def table(rounds: list[Round]) -> list[str]:
    head = ("round", "server", "n", "ack p50", "ack p99", "ack max", "checklist p50", "checklist p99", "errors")
    rows = [head]
    for r in rounds:
        rows.append((str(r.number), r.target, str(len(r.samples)), ms(pct(r.acks(), 50)), ms(pct(r.acks(), 99)),
                     ms(max(r.acks(), default=None)), ms(pct(r.checklists(), 50)),
                     ms(pct(r.checklists(), 99)), str(r.errors())))
    for name in ("bare", "bot"):
        mine = [r for r in rounds if r.target == name and r.number > 0]
        acks = [a for r in mine for a in r.acks()]
        cls = [c for r in mine for c in r.checklists()]
        rows.append(("all", name, str(sum(len(r.samples) for r in mine)), ms(pct(acks, 50)), ms(pct(acks, 99)),
                     ms(max(acks, default=None)), ms(pct(cls, 50)), ms(pct(cls, 99)),
                     str(sum(r.errors() for r in mine))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(cell.rjust(w) if i >= 2 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def mark(met: bool) -> str:
    return "met" if met else "MISSED"


def verdicts(rounds: list[Round]) -> tuple[list[str], bool]:
    lines, ok = [], True
    numbers = sorted({r.number for r in rounds if r.number > 0})
    for number in numbers:
        bare = next(r for r in rounds if r.number == number and r.target == "bare")
        bot = next(r for r in rounds if r.number == number and r.target == "bot")
        bare99, bot99, cl99 = pct(bare.acks(), 99), pct(bot.acks(), 99), pct(bot.checklists(), 99)
        complete = bot.errors() == 0 and bare.errors() == 0 and len(bot.checklists()) == len(bot.samples)
        under_1s = bot99 is not None and bot99 <= ACK_TARGET
        ratio_ok = None not in (bare99, bot99) and bot99 <= ACK_RATIO * bare99
        cl_ok = cl99 is not None and cl99 < CHECKLIST_TARGET
        good = complete and under_1s and ratio_ok and cl_ok
        ok = ok and good
        ratio = f"{bot99 / bare99:.1f}x" if bot99 and bare99 else "-"

        lines.append(
            f"round {number}: ack p99 {ms(bot99)} [<= {ACK_TARGET * 1000:.0f} ms: {mark(under_1s)}], "
            f"{ratio} the bare app's {ms(bare99)} [<= {ACK_RATIO}x: {mark(ratio_ok)}]; "
            f"checklist p99 {ms(cl99)} [< {CHECKLIST_TARGET * 1000:.0f} ms: {mark(cl_ok)}]"
            + ("" if complete else "; ERRORS"))
    return lines, ok


# ---------------------------------------------------------------------------- main


def prepare_database(url: str | None, workdir: Path) -> str:
    from bot.db.engine import Database

    url = url or f"sqlite:///{workdir / 'bench.db'}"
    db = Database(url)
    try:
        db.upgrade()
    finally:
        db.dispose()
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20, help="concurrent declarations per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-ms", type=int, default=150, help="added to every Web API call")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--in-process", action="store_true", help="run the servers in this process")
    parser.add_argument("--sandbox-threads", type=int, default=64,
                        help="sandbox HTTP threads (Slack has no such cap; keep it above --n)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the checklists")
    parser.add_argument("--no-warmup", action="store_true", help="skip the one uncounted warm-up declaration")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--serve-bare", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--api-url", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare is not None:
        serve_bare(args.serve_bare, args.api_url)
        return 0
    if not 1 <= args.n <= 500 or not 1 <= args.rounds <= 50:
        parser.error("--n must be 1..500 and --rounds 1..50")

    import logging

    logging.basicConfig(level=logging.WARNING)
    from sandbox.server import Sandbox

    workdir = Path(tempfile.mkdtemp(prefix="safeguard-bench-"))
    targets: list[Target] = []
    rounds: list[Round] = []
    keep_logs = False
    with pooled_driver_transport(), Sandbox(signing_secret=SECRET, threads=args.sandbox_threads, rate_limits=True) as sandbox:
        try:
            database_url = prepare_database(args.database_url, workdir)
            if args.in_process:
                targets.append(start_bare_in_process(sandbox))
                targets.append(start_bot_in_process(sandbox, database_url))
            else:
                targets.append(start_bare_subprocess(sandbox, workdir))
                targets.append(start_bot_subprocess(sandbox, database_url, workdir))
            bare, bot = targets
            watch = ChecklistWatch(sandbox)
            sandbox.faults.latency(args.latency_ms)
            mode = "in-process" if args.in_process else "subprocesses (safeguard serve / bare Bolt app)"
            print(f"{args.rounds} rounds x {args.n} concurrent /incident declare; +{args.latency_ms} ms per "
                  f"Web API call; servers: {mode}, waitress threads={SERVER_THREADS}, listener "
                  f"workers={LISTENER_WORKERS}; database: {database_url.split('?')[0]}; "
                  f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
            if not args.no_warmup:  # first-request costs (imports, templates, connections): not counted
                for target in (bare, bot):
                    rnd = fire(sandbox, target, 1, 0, expect_incident=target is bot)
                    if target is bot:
                        collect_checklists(watch, rnd, args.timeout)
                        quiesce(sandbox)
                    rounds.append(rnd)
            for number in range(1, args.rounds + 1):
                rounds.append(fire(sandbox, bare, args.n, number, expect_incident=False))
                rnd = fire(sandbox, bot, args.n, number, expect_incident=True)
                collect_checklists(watch, rnd, args.timeout)
                rounds.append(rnd)
                quiesce(sandbox)
        finally:
            for target in reversed(targets):
                target.stop()
    print("\n".join(table([r for r in rounds if r.number > 0])))
    warm = [r for r in rounds if r.number == 0]
    if warm:
        print("warm-up (not counted): " + ", ".join(
            f"{r.target} ack {ms(pct(r.acks(), 50))}" + (f", checklist {ms(pct(r.checklists(), 50))}"
                                                         if r.target == "bot" else "") for r in warm))
    lines, ok = verdicts(rounds)
    print("\n".join(lines))
    failures = [f"  {r.target} round {r.number}: {s.error}" for r in rounds for s in r.samples if s.error]
    if failures:
        keep_logs = True
        print("\n".join(failures[:10] + ([f"  … and {len(failures) - 10} more"] if len(failures) > 10 else [])))
    if keep_logs:
        print(f"server logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print("all targets met" if ok else "TARGETS MISSED")
    return 1 if args.strict and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
