"""Crash and storm runs against the served bot, and counting what people would see afterwards.

`CrashStack` runs, on loopback: the sandbox workspace, the PagerDuty Events v2 stand-in, the
aiosmtpd stand-in and `safeguard serve` (`ServeProcess`: like `tests.clocks_support.BotProcess`,
PORT=0, restartable; forked from a fork server that did the imports, see FORK_SERVER) on a
SQLite file or a PostgreSQL schema, with a one-playbook folder of second-long clocks (`Clocks`:
by default a reminder 2 s after the declaration, a page to `legal` 3 s after it) and an
escalation policy whose levels wait `ack_within` each (level 1: Slack + e-mail to Lena;
level 2: Slack + PagerDuty + e-mail to Gabe; then the leads are told).

A `Workload` thread sends `/incident declare crash-drill <unique summary>` through the sandbox
driver (Slack-signed HTTP) and records each answer: acked when the HTTP 200 names `INC-N`, or
when it said "Working on it" and the answer naming `INC-N` came on the response_url.
`kill_loop` SIGKILLs the bot at random moments and starts it again; `settle` waits until every
clock has fired and the outbox is empty; `count` reads the workspace, the stand-ins and the
database and returns a `Report` (declarations acked and lost, and per kind what exists more
or less often than once).

The dispatcher's lease is 2 minutes and neither a setting nor an environment variable changes
it (`runtime/app.py` builds `Dispatcher(db, workers=…, first_retry=…)`, lease left at its
default). A task whose worker was killed stays `running` until then. `settle` therefore ends
the leases of the dead processes' tasks in the database while no bot runs (what waiting two
minutes would do, and nothing else), then starts the last bot; `--real-lease` in bench/crash.py
waits the real two minutes instead.
"""

from __future__ import annotations

import json
import random
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from sandbox.pagerduty import PagerDutyStandIn
from sandbox.server import Sandbox
from sandbox.smtp import SmtpStandIn
from tests.support import DEMO_CONFIG, wait_for

SECRET = "crash-signing-secret"
PD_KEY = "crash0routing0key000000000000000"  # 32 characters, as PagerDuty wants
LEAD, LEGAL, GC = "U0LEAD001", "U0LEGAL01", "U0GC00001"
OPS = "C0OPS0001"
PLAYBOOK = "crash-drill"
TASK_EVENT = "safeguard_task"  # bot/tasks.py: every post carries its task id
CHECKLIST_EVENT = "safeguard_checklist"  # bot/incidents/provision.py
WORKING = "Working on it"
INC = re.compile(r"\bINC-(\d+)\b")
CHANNEL_NAME = re.compile(r"^inc-(\d+)-")
EMAIL_ID = re.compile(r"<safeguard-page-(\d+)\.level-(\d+)@")


# ============================================================================ the organisation


@dataclass(frozen=True)
class Clocks:
    remind_after: str = "2s"
    page_after: str = "3s"
    ack_within: str = "2s"
    first_retry: str = "1s"  # page deliveries (delivery.first_retry)


def write_org(folder: Path, events_url: str, clocks: Clocks = Clocks()) -> tuple[Path, Path]:
    """The demo config (PagerDuty aimed at the stand-in, short escalation) and a folder with
    the one test playbook. Returns (config path, playbooks folder)."""
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    data["pagers"]["pagerduty"]["events_url"] = events_url
    data["roles"]["legal"]["escalation"] = [
        {"notify": ["slack", "email"], "ack_within": clocks.ack_within},
        {"notify": ["slack", "pagerduty", "email"], "ack_within": clocks.ack_within, "users": [GC]},
    ]
    data["delivery"] = {"max_attempts": 8, "first_retry": clocks.first_retry}
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "safeguard.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    playbooks = folder / "playbooks"
    playbooks.mkdir(exist_ok=True)
    (playbooks / f"{PLAYBOOK}.yaml").write_text(
        "# Second-long clocks for the crash and storm tests (tests/test_crash.py, bench/crash.py).\n"
        "# No legal basis: a test playbook; every duration is an internal target.\n"
        f"id: {PLAYBOOK}\n"
        "title: Crash drill\n"
        "severity: sev3\n"
        "private: true\n"
        "roles: [incident_lead, legal]\n"
        "steps:\n"
        "  - id: report\n"
        "    title: File the drill report\n"
        "    owner: incident_lead\n"
        "    timers:\n"
        f"      - {{after: {clocks.remind_after}, remind: owner, basis: internal target}}\n"
        f"      - {{after: {clocks.page_after}, page: legal, basis: internal target}}\n"
    )
    return config, playbooks


# ============================================================================ response_url answers

# What the bot posted on each response_url, by workspace and url id: a "Working on it" ack is an
# ack only once the answer follows there. The sandbox keeps no such record, so its handler is
# wrapped (in this process only; it still does exactly what it did).
_answers: dict[int, dict[str, list[str]]] = {}
_answers_lock = threading.Lock()


def _record_response_urls(workspace) -> dict[str, list[str]]:
    import sandbox.webapp as webapp

    if not getattr(webapp.post_to_response_url, "_crash_recorder", False):
        original = webapp.post_to_response_url

        def recording(ws, rid, body):
            shown = original(ws, rid, body)  # raises what Slack would refuse: nothing recorded
            with _answers_lock:
                book = _answers.get(id(ws))
                if book is not None:
                    text = str(body.get("text") or "") if isinstance(body, dict) else ""
                    book.setdefault(rid, []).append(text)
            return shown

        recording._crash_recorder = True  # type: ignore[attr-defined]
        webapp.post_to_response_url = recording
    with _answers_lock:
        return _answers.setdefault(id(workspace), {})


# ============================================================================ the bot process

# A fork server: one interpreter imports what `safeguard serve` imports, then forks a child
# for each start, which runs the console script's entry point (`runtime.cli:main`, as
# `safeguard serve --host 127.0.0.1`) with its output in its own log file. Importing is about
# 1.5 s of CPU of a 2 s cold start; with the imports shared a restart costs a fraction of a
# second, so the kills come thick even with two runs sharing two cores. Nothing of the bot
# exists before the child runs `serve` (the factory creates everything; nothing is created at
# import time), so each child starts from the database alone, as after a cold start.
FORK_SERVER = r"""
import os, signal, sys, threading
import alembic.command, alembic.runtime.migration, apscheduler.schedulers.background  # noqa
import flask, slack_bolt, slack_sdk, sqlalchemy, waitress  # noqa
import runtime.app, runtime.cli, runtime.server, runtime.web, handlers, bot.db.migrate  # noqa
assert threading.active_count() == 1, "no threads may run in a fork server"
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
print("ready", flush=True)
import json
for line in sys.stdin:
    if not line.strip():
        continue
    order = json.loads(line)
    log = order["log"]
    pid = os.fork()
    if pid:
        print(pid, flush=True)
        continue
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.environ.update(order["env"])
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        sys.argv = ["safeguard", "serve", "--host", "127.0.0.1"]
        runtime.cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
"""


class ForkServer:
    """The fork server process (see FORK_SERVER); `spawn(log, env)` starts one `serve` child
    with `env` added to the environment. One per test process: see `fork_server()`."""

    def __init__(self) -> None:
        import os
        import queue
        import subprocess

        self.proc = subprocess.Popen([sys.executable, "-c", FORK_SERVER],
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=str(Path(__file__).resolve().parent.parent))
        self._lines: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        first = self._next(60)
        if first != "ready":
            raise AssertionError(f"the fork server did not start: {first!r}")

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(line.strip())
        self._lines.put("")

    def _next(self, timeout: float) -> str:
        import queue

        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("the fork server does not answer") from None

    def spawn(self, log_path: Path, env: dict[str, str]) -> int:
        with self._lock:
            self.proc.stdin.write(json.dumps({"log": str(log_path), "env": env}) + "\n")
            self.proc.stdin.flush()
            answer = self._next(30)
        if not answer.isdigit():
            raise AssertionError(f"the fork server failed: {answer!r}")
        return int(answer)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


_fork_server: ForkServer | None = None
_fork_lock = threading.Lock()


def fork_server() -> ForkServer:
    """This process's fork server, started on first use and stopped when the process exits."""
    global _fork_server
    with _fork_lock:
        if _fork_server is None or _fork_server.proc.poll() is not None:
            import atexit

            _fork_server = ForkServer()
            atexit.register(_fork_server.stop)
        return _fork_server


class ServeProcess:
    """One `safeguard serve`: a child of the fork server, or (`forks=None`) the console script
    itself. Its stdout and stderr go to `log_path`; PORT=0, so its URL is read from the log."""

    def __init__(self, env: dict[str, str], log_path: Path, forks: ForkServer | None = None) -> None:
        import os
        import subprocess

        self.log_path = log_path
        self.proc = None
        if forks is not None:
            self.pid = forks.spawn(log_path, env)
        else:
            exe = Path(sys.executable).parent / "safeguard"
            command = [str(exe)] if exe.exists() else [sys.executable, "-m", "runtime.cli"]
            with log_path.open("ab") as log:
                self.proc = subprocess.Popen([*command, "serve", "--host", "127.0.0.1"],
                                             env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            self.pid = self.proc.pid
        self.url = ""

    def alive(self) -> bool:
        import os

        if self.proc is not None:
            return self.proc.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        try:  # a zombie (not reaped yet) is dead too
            with open(f"/proc/{self.pid}/stat") as f:
                return f.read().split(") ", 1)[1][:1] != "Z"
        except OSError:
            return False

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_listening(self, timeout: float = 60.0) -> ServeProcess:
        def listening() -> str | None:
            found = re.search(r"^Listening on (\S+)/slack/events$", self.log_text(), re.M)
            if found:
                return found.group(1)
            if not self.alive():
                raise AssertionError(f"the bot exited: {self.log_text()[-3000:]}")
            return None

        self.url = wait_for(listening, timeout, interval=0.02, what="the bot to listen")
        return self

    def wait_healthy(self, timeout: float = 60.0) -> ServeProcess:
        import httpx

        def healthy() -> bool:
            if not self.alive():
                raise AssertionError(f"the bot exited: {self.log_text()[-3000:]}")
            try:
                return httpx.get(self.url + "/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout, interval=0.02, what="the bot to be healthy")
        return self

    @property
    def events_url(self) -> str:
        return self.url + "/slack/events"

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs; whatever it was doing stops where it was."""
        import os
        import signal

        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            return
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        wait_for(lambda: not self.alive(), 10, interval=0.01, what=f"process {self.pid} to die")


# ============================================================================ the stack


class CrashStack:
    """The sandbox, both pager stand-ins and `safeguard serve` (restartable) on one database."""

    def __init__(self, folder: Path, database_url: str, *, clocks: Clocks = Clocks(),
                 bot_env: dict[str, str] | None = None, start_bot: bool = True, fork: bool = True) -> None:
        self.folder = folder
        self.autostart = start_bot
        self.database_url = database_url
        self.clocks = clocks
        self.bot_env = bot_env or {}
        self.bot: ServeProcess | None = None
        self.fork = fork
        self.starts = 0
        self.kills: list[dict[str, Any]] = []
        self.start_phases: list[tuple[float, float]] = []  # seconds to listening, then to healthy

    def __enter__(self) -> CrashStack:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sandbox = Sandbox(signing_secret=SECRET).start()
        self.answers = _record_response_urls(self.sandbox.state)
        self.smtp = SmtpStandIn().start()
        self.pd = PagerDutyStandIn().start()
        if not self.database_url.startswith("sqlite"):  # `serve` migrates only SQLite by itself
            from bot.db.engine import Database

            database = Database(self.database_url)
            database.upgrade()
            database.dispose()
        self.config, self.playbooks = write_org(self.folder / "org", self.pd.url, self.clocks)
        self.env = {
            "SLACK_BOT_TOKEN": self.sandbox.bot_token, "SLACK_SIGNING_SECRET": SECRET, "SLACK_APP_TOKEN": "",
            "SLACK_API_URL": self.sandbox.api_url, "DATABASE_URL": self.database_url,
            "SAFEGUARD_SLACK_PACING": "on" if self.sandbox.limits.enabled else "off",
            "SAFEGUARD_CONFIG": str(self.config), "SAFEGUARD_PLAYBOOKS": str(self.playbooks), "PORT": "0",
            "PD_ROUTING_KEY": PD_KEY, "SMTP_URL": self.smtp.url, **self.bot_env,
        }
        if self.autostart:
            self.start_bot()

    def close(self) -> None:
        if self.bot is not None:
            self.bot.kill()
            self.bot = None
        for part in ("pd", "smtp", "sandbox"):
            thing = getattr(self, part, None)
            if thing is not None:
                try:
                    thing.stop()
                except Exception as err:  # keep closing the rest
                    print(f"crash stack: stopping {part} failed: {err!r}", file=sys.stderr)
        with _answers_lock:
            if hasattr(self, "sandbox"):
                _answers.pop(id(self.sandbox.state), None)

    # ------------------------------------------------------------------ the bot

    def start_bot(self, timeout: float = 60.0, *, healthy: bool = True) -> ServeProcess:
        """Start `safeguard serve` and point the sandbox at it once it listens; then wait until
        /healthz says ok, unless `healthy=False` (Slack is down, so it cannot)."""
        began = time.monotonic()
        self.starts += 1
        bot = ServeProcess(self.env, self.folder / f"bot-{self.starts:03d}.log", fork_server() if self.fork else None)
        self.bot = bot
        bot.wait_listening(timeout)
        self.sandbox.set_bot_url(bot.events_url)
        listening = time.monotonic()
        if healthy:
            bot.wait_healthy(timeout)
        self.start_phases.append((listening - began, time.monotonic() - listening))
        return bot

    def kill_bot(self) -> None:
        """SIGKILL: no shutdown code runs; whatever it was doing stops where it was."""
        if self.bot is None:
            return
        pid = self.bot.pid
        self.bot.kill()
        self.bot = None
        self.kills.append({"at": time.time(), "pid": pid, "running_tasks": self.count_rows("running_tasks", pid)})

    def kill_loop(self, kills: int, rng: random.Random, gap: tuple[float, float] = (0.2, 2.0),
                  deadline: float | None = None) -> None:
        """`kills` times: let the bot work for uniform(gap) seconds, SIGKILL it, start it again
        (fewer when the `deadline`, a time.monotonic() value, passes first)."""
        for _ in range(kills):
            if deadline is not None and time.monotonic() > deadline:
                return
            time.sleep(rng.uniform(*gap))
            self.kill_bot()
            self.start_bot()

    # ------------------------------------------------------------------ the database

    def engine(self):
        from sqlalchemy import create_engine

        from bot.db.engine import normalise_url

        if not hasattr(self, "_engine"):
            self._engine = create_engine(normalise_url(self.database_url))
        return self._engine

    def dispose(self) -> None:
        if hasattr(self, "_engine"):
            self._engine.dispose()
            del self._engine

    def count_rows(self, what: str, pid: int | None = None) -> int:
        from sqlalchemy import func, select

        from bot.db.models import Task, Timer

        mine = Task.owner.like(f"%:{pid}:%") if pid is not None else Task.id.is_not(None)  # node_name()
        query = {
            "running_tasks": select(func.count(Task.id)).where(Task.state == "running", mine),
            "open_tasks": select(func.count(Task.id)).where(Task.state.in_(("pending", "running"))),
            "pending_timers": select(func.count(Timer.id)).where(Timer.state == "pending"),
        }[what]
        try:
            with self.engine().connect() as conn:
                return int(conn.execute(query).scalar() or 0)
        except Exception:  # not migrated yet (killed during the first start on SQLite)
            return 0

    def end_dead_leases(self) -> int:
        """The leases of tasks whose worker was killed run out now instead of in 2 minutes
        (no bot may be running: this is what the passing of the lease would do)."""
        from sqlalchemy import update

        from bot.db.models import Task

        assert self.bot is None, "end leases only while no bot runs"
        with self.engine().begin() as conn:
            return conn.execute(update(Task).where(Task.state == "running")
                                .values(lease_until=datetime.now(UTC) - timedelta(seconds=1))).rowcount

    def settle(self, timeout: float = 60.0, *, real_lease: bool = False) -> float:
        """Stop the bot, end dead leases, start it once more and wait until every clock has
        fired and the outbox is empty (and stays so for a second). Returns the seconds it took."""
        began = time.monotonic()
        self.kill_bot()
        if real_lease:
            time.sleep(125)
        else:
            self.end_dead_leases()
        self.start_bot()
        self.wait_idle(timeout)
        return time.monotonic() - began

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Until no timer is pending and no task is pending or running, for half a second."""
        def quiet() -> bool:
            if self.count_rows("pending_timers") or self.count_rows("open_tasks"):
                return False
            time.sleep(0.5)  # nothing new (a late event from the sandbox) comes meanwhile
            return not (self.count_rows("pending_timers") or self.count_rows("open_tasks"))

        wait_for(quiet, timeout, interval=0.1, what="every clock to fire and the outbox to empty")


# ============================================================================ the workload


@dataclass
class Declaration:
    n: int
    summary: str
    status: int | None = None
    text: str = ""
    rid: str | None = None
    error: str | None = None
    elapsed: float = 0.0

    @property
    def direct(self) -> int | None:
        """The incident number the HTTP answer itself named."""
        if self.status == 200:
            found = INC.search(self.text)
            return int(found.group(1)) if found else None
        return None

    @property
    def working(self) -> bool:
        return self.status == 200 and WORKING in self.text


class Workload(threading.Thread):
    """Declares incidents one after another until stopped (or `limit` is reached)."""

    def __init__(self, stack: CrashStack, tag: str, *, pause: tuple[float, float] = (0.1, 0.4),
                 limit: int | None = None, seed: int = 0) -> None:
        super().__init__(name=f"workload-{tag}", daemon=True)
        self.stack, self.tag, self.pause, self.limit = stack, tag, pause, limit
        self.rng = random.Random(seed)
        self.sent: list[Declaration] = []
        self.stopping = threading.Event()
        self.failure: BaseException | None = None

    def declare_one(self) -> Declaration:
        n = len(self.sent) + 1
        decl = Declaration(n, f"Crash drill {self.tag} {n:04d} case {self.rng.randrange(10**6):06d}")
        began = time.monotonic()
        result = self.stack.sandbox.driver.command(LEAD, f"declare {PLAYBOOK} {decl.summary}", channel=OPS)
        decl.elapsed = time.monotonic() - began
        decl.status, decl.error = result.status, result.error
        body = result.body
        decl.text = str(body.get("text") or "") if isinstance(body, dict) else str(body or "")
        form = result.payload if isinstance(result.payload, dict) else {}
        decl.rid = str(form.get("response_url", "")).rsplit("/", 1)[-1] or None
        self.sent.append(decl)
        return decl

    def run(self) -> None:
        try:
            while not self.stopping.is_set() and (self.limit is None or len(self.sent) < self.limit):
                self.declare_one()
                self.stopping.wait(self.rng.uniform(*self.pause))
        except BaseException as err:  # surfaced by stop()
            self.failure = err

    def wait_answered(self, n: int, timeout: float) -> None:
        """Go on declaring until `n` declarations were answered (a slow machine answers fewer
        between kills), or `timeout` s pass."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.is_alive() and \
                sum(1 for d in list(self.sent) if d.direct is not None or d.working) < n:
            time.sleep(0.2)

    def stop(self) -> list[Declaration]:
        self.stopping.set()
        self.join(30)
        if self.failure is not None:
            raise self.failure
        return self.sent


# ============================================================================ counting


@dataclass
class Report:
    """What the run left, counted where people would see it. Every `dup_*` / `missing_*` maps a
    key to how many there are (dup: more than one; missing: none); the targets are empty maps."""

    database: str = ""
    kills: int = 0
    running_at_kill: int = 0  # tasks that were running when a kill came (leases stranded)
    sent: int = 0
    acked: int = 0  # HTTP 200 naming INC-N, or "Working on it" and then the answer
    acked_direct: int = 0
    acked_late: int = 0
    working_unanswered: int = 0  # "Working on it" and no answer followed
    acked_slack_down: int = 0  # acks that said Slack was not answering the bot (declared and saved)
    not_acked: int = 0  # connection refused or broken by a kill, timeout, error answer
    incidents: int = 0
    lost: list[str] = field(default_factory=list)  # acked declarations with no incident
    wrong_number: list[str] = field(default_factory=list)  # the ack named another incident
    unacked_but_declared: int = 0  # the bot died after the commit, before its answer got out
    working_unanswered_declared: int = 0
    dup_incidents: dict[str, int] = field(default_factory=dict)  # per summary
    channels: int = 0
    dup_channels: dict[int, int] = field(default_factory=dict)  # per incident: inc-N-… channels
    missing_channels: list[int] = field(default_factory=list)
    orphan_channels: list[str] = field(default_factory=list)  # inc-N-… with no incident N
    wrong_channel: list[int] = field(default_factory=list)  # the database names another channel
    checklists: int = 0
    dup_checklists: dict[int, int] = field(default_factory=dict)
    missing_checklists: list[int] = field(default_factory=list)
    dup_pins: dict[int, int] = field(default_factory=dict)
    missing_pins: list[int] = field(default_factory=list)
    page_dms: int = 0
    dup_page_dms: dict[str, int] = field(default_factory=dict)  # "page/level/user"
    missing_page_dms: list[str] = field(default_factory=list)
    reminders: int = 0
    dup_reminders: dict[str, int] = field(default_factory=dict)  # "timer->destination"
    missing_reminders: list[str] = field(default_factory=list)
    reminders_by_dm: int = 0  # reminders that went by DM (the channel did not exist yet)
    posts: int = 0  # every bot post that carries a task id
    dup_posts: dict[int, int] = field(default_factory=dict)  # per task id
    missing_posts: list[int] = field(default_factory=list)  # done tasks with no message
    fired_twice: dict[int, int] = field(default_factory=dict)  # timer id -> timer_fired events
    pages: int = 0
    pd_incidents: int = 0
    dup_pd: dict[str, int] = field(default_factory=dict)  # dedup_key -> incidents PagerDuty shows
    missing_pd: list[str] = field(default_factory=list)
    orphan_pd: list[str] = field(default_factory=list)
    pd_triggers: int = 0  # trigger events accepted (PagerDuty folds repeats into one incident)
    emails: int = 0  # messages the SMTP server accepted
    email_levels: int = 0
    dup_email_ids: dict[str, int] = field(default_factory=dict)  # page/level -> distinct Message-IDs
    email_copies: dict[str, int] = field(default_factory=dict)  # page/level -> accepted copies (> 1)
    missing_emails: list[str] = field(default_factory=list)
    dead_tasks: dict[str, int] = field(default_factory=dict)  # kind -> tasks given up
    faults_hit: dict[str, int] = field(default_factory=dict)  # "method status" -> Web API calls that failed
    # Deliveries of pages that went unanswered and were never made (the bug test_crash.py's
    # xfail shows): "page_dms 3/1/U0LEGAL01", "pd safeguard-page-3", "emails 3/2".
    undelivered_unanswered: list[str] = field(default_factory=list)
    settle_seconds: float = 0.0
    seconds: float = 0.0

    def problems(self) -> dict[str, Any]:
        """Everything that misses its target, by name (empty: all targets met)."""
        keys = ["lost", "wrong_number", "dup_incidents", "dup_channels", "missing_channels", "orphan_channels",
                "wrong_channel", "dup_checklists", "missing_checklists", "dup_pins", "missing_pins",
                "dup_page_dms", "missing_page_dms", "dup_reminders", "missing_reminders", "dup_posts",
                "missing_posts", "fired_twice", "dup_pd", "missing_pd", "orphan_pd", "dup_email_ids",
                "missing_emails", "dead_tasks"]
        return {k: getattr(self, k) for k in keys if getattr(self, k)}

    def figures(self) -> str:
        dups = {k: sum(v.values()) - len(v) if isinstance(v, dict) else len(v)
                for k, v in self.problems().items()}
        return (
            f"[{self.database}] kills={self.kills} (tasks running at a kill: {self.running_at_kill}) "
            f"sent={self.sent} acked={self.acked} (direct {self.acked_direct}, after 'Working on it' "
            f"{self.acked_late}) working-unanswered={self.working_unanswered} not-acked={self.not_acked} "
            f"incidents={self.incidents} lost={len(self.lost)} unacked-but-declared={self.unacked_but_declared}\n"
            f"  channels={self.channels} checklists={self.checklists} page-DMs={self.page_dms} "
            f"reminders={self.reminders} (by DM {self.reminders_by_dm}) task-posts={self.posts} pages={self.pages} "
            f"PagerDuty incidents={self.pd_incidents} (triggers {self.pd_triggers}) e-mails={self.emails} "
            f"for {self.email_levels} page levels (levels with more than one copy: {len(self.email_copies)}, "
            f"extra copies {sum(self.email_copies.values()) - len(self.email_copies)})\n"
            f"  page deliveries never made because the page went unanswered first: "
            f"{len(self.undelivered_unanswered)} {self.undelivered_unanswered[:6]}\n"
            f"  Slack calls that failed: {sum(self.faults_hit.values())} {dict(list(self.faults_hit.items())[:6])}\n"
            f"  settle={self.settle_seconds:.1f}s total={self.seconds:.1f}s problems: "
            + (json.dumps(dups) if dups else "none")
        )

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {k: ({str(a): b for a, b in v.items()} if isinstance(v, dict) else v) for k, v in asdict(self).items()}


def _dups(counter: Counter) -> dict:
    return {k: v for k, v in sorted(counter.items(), key=lambda kv: str(kv[0])) if v > 1}


def count(stack: CrashStack, declarations: list[Declaration], *, database: str = "") -> Report:
    """Count what the run left (the bot should be idle: see `CrashStack.settle`)."""
    from sqlalchemy import select

    from bot.db.models import Incident, Page, Task, TimelineEvent, Timer

    r = Report(database=database, kills=len(stack.kills), running_at_kill=sum(k["running_tasks"] for k in stack.kills))
    with stack.engine().connect() as conn:
        incidents = {row.id: row for row in conn.execute(select(
            Incident.id, Incident.title, Incident.channel_id, Incident.checklist_ts))}
        tasks = {row.id: row for row in conn.execute(select(Task.id, Task.kind, Task.payload, Task.state))}
        pages = {row.id: row for row in conn.execute(select(Page.id, Page.incident_id, Page.level, Page.state))}
        timers = {row.id: row for row in conn.execute(select(Timer.id, Timer.kind, Timer.state))}
        fired = Counter(data["timer"] for (data,) in conn.execute(
            select(TimelineEvent.data).where(TimelineEvent.kind == "timer_fired")))
    ws = stack.sandbox.state
    with ws.lock:
        r.faults_hit = dict(Counter(f"{c.method} {c.http_status}" for c in ws.calls if c.http_status != 200))

    # -- declarations
    by_summary: dict[str, list[int]] = {}
    for number, row in incidents.items():
        by_summary.setdefault(row.title, []).append(number)
    r.incidents = len(incidents)
    r.sent = len(declarations)
    r.dup_incidents = {s: len(ns) for s, ns in by_summary.items() if len(ns) > 1}
    for d in declarations:
        numbers = by_summary.get(d.summary, [])
        named = d.direct
        late = None
        if named is None and d.working:
            for text in stack.answers.get(d.rid or "", []):
                found = INC.search(text)
                if found:
                    late = int(found.group(1))
                    break
        if named is not None or late is not None:
            r.acked += 1
            r.acked_direct += named is not None
            r.acked_late += late is not None
            r.acked_slack_down += "Slack is not answering" in d.text
            if not numbers:
                r.lost.append(f"{d.summary} (acked as INC-{named or late})")
            elif (named or late) not in numbers:
                r.wrong_number.append(f"{d.summary}: acked as INC-{named or late}, is INC-{numbers}")
        elif d.working:
            r.working_unanswered += 1
            r.working_unanswered_declared += bool(numbers)
        else:
            r.not_acked += 1
            r.unacked_but_declared += bool(numbers)

    # -- channels, checklists, pins
    channels = [c for c in list(ws.channels.values()) if not c.is_im and CHANNEL_NAME.match(c.name)]
    per_incident = Counter()
    for ch in channels:
        number = int(CHANNEL_NAME.match(ch.name).group(1))
        if number not in incidents:
            r.orphan_channels.append(ch.name)
        per_incident[number] += 1
    r.channels = len(channels)
    r.dup_channels = _dups(per_incident)
    r.missing_channels = sorted(n for n in incidents if per_incident[n] == 0)
    for number, row in incidents.items():
        ch = ws.channel(row.channel_id) if row.channel_id else None
        if ch is None or not CHANNEL_NAME.match(ch.name) or int(CHANNEL_NAME.match(ch.name).group(1)) != number:
            r.wrong_channel.append(number)
            continue
        checklists = [m for m in ch.messages if (m.metadata or {}).get("event_type") == CHECKLIST_EVENT]
        r.checklists += len(checklists)
        if len(checklists) > 1:
            r.dup_checklists[number] = len(checklists)
        elif not checklists:
            r.missing_checklists.append(number)
        pins = len(ch.pins)
        if pins > 1:
            r.dup_pins[number] = pins
        elif pins == 0:
            r.missing_pins.append(number)

    # -- every post that carries a task id: per task, per reminder timer, per page level and person
    posted: Counter = Counter()
    where: dict[int, list[str]] = {}
    for ch in list(ws.channels.values()):
        for m in list(ch.messages):
            meta = m.metadata or {}
            if meta.get("event_type") == TASK_EVENT and m.user == ws.bot_user_id:
                task_id = (meta.get("event_payload") or {}).get("task")
                posted[task_id] += 1
                where.setdefault(task_id, []).append(ch.user if ch.is_im else ch.id)
    r.posts = sum(posted.values())
    r.dup_posts = _dups(posted)
    posting = ("post", "channel_post")
    r.missing_posts = sorted(t.id for t in tasks.values() if t.state == "done" and posted[t.id] == 0 and (
        t.kind in posting or (t.kind == "page_notify" and t.payload.get("backend") == "slack")))
    reminders: Counter = Counter()
    expected_reminders: set[str] = set()
    dms: Counter = Counter()
    expected_dms: set[str] = set()
    for t in tasks.values():
        event = (t.payload or {}).get("event") or {}
        if t.kind in posting and event.get("kind") == "reminder_sent":
            timer = event["data"]["timer"]
            destination = t.payload.get("channel") or f"incident {t.payload.get('incident')}"
            key = f"{timer}->{destination}"
            expected_reminders.add(key)
            reminders[key] += posted[t.id]
            r.reminders += posted[t.id]
            if str(destination).startswith("U"):
                r.reminders_by_dm += posted[t.id]
        elif t.kind == "page_notify" and t.payload.get("backend") == "slack":
            key = f"{t.payload['page']}/{t.payload['level']}/{t.payload['user']}"
            expected_dms.add(key)
            dms[key] += sum(1 for w in where.get(t.id, []) if w == t.payload["user"])
            r.page_dms += posted[t.id]
    for timer in timers.values():  # a remind timer that fired must have asked for its reminder
        if timer.kind == "remind" and timer.state == "fired" and not any(
                k.startswith(f"{timer.id}->") for k in expected_reminders):
            reminders[f"{timer.id}->nowhere"] += 0
            expected_reminders.add(f"{timer.id}->nowhere")
    r.dup_reminders = _dups(reminders)
    r.missing_reminders = sorted(k for k in expected_reminders if reminders[k] == 0)
    r.dup_page_dms = _dups(dms)
    r.missing_page_dms = sorted(k for k in expected_dms if dms[k] == 0)
    r.fired_twice = {t: n for t, n in fired.items() if n > 1}
    r.dead_tasks = dict(Counter(t.kind for t in tasks.values() if t.state == "dead"))

    # -- PagerDuty, as PagerDuty shows it: incidents by dedup_key (level 2 pages it)
    r.pages = len(pages)
    with stack.pd._lock:
        opened = Counter(stack.pd.opened)
        r.pd_triggers = sum(1 for e in stack.pd.events if e.get("event_action") == "trigger")
    r.pd_incidents = sum(opened.values())
    r.dup_pd = _dups(opened)
    wanted = {f"safeguard-page-{t.payload['page']}" for t in tasks.values()
              if t.kind == "page_notify" and t.payload.get("backend") == "pagerduty" and t.state == "done"}
    r.missing_pd = sorted(k for k in wanted if opened[k] == 0)
    r.orphan_pd = sorted(k for k in opened if k not in {f"safeguard-page-{p}" for p in pages})

    # -- e-mails: one Message-ID per page level; copies the server accepted more than once
    ids: dict[str, set[str]] = {}
    copies: Counter = Counter()
    with stack.smtp._lock:
        messages = list(stack.smtp.messages)
    for m in messages:
        message_id = str(m["Message-ID"] or "")
        found = EMAIL_ID.search(message_id)
        page = str(m["X-Safeguard-Page"] or "").removeprefix("safeguard-page-")
        level = found.group(2) if found else "?"
        key = f"{page}/{level}"
        ids.setdefault(key, set()).add(message_id)
        copies[key] += 1
    r.emails = len(messages)
    r.email_levels = len(ids)
    r.dup_email_ids = {k: len(v) for k, v in ids.items() if len(v) > 1}
    r.email_copies = _dups(copies)
    wanted_emails = {f"{t.payload['page']}/{t.payload['level']}" for t in tasks.values()
                     if t.kind == "page_notify" and t.payload.get("backend") == "email" and t.state == "done"}
    r.missing_emails = sorted(k for k in wanted_emails if copies[k] == 0)

    # A delivery that never went out because its page was no longer open: right when someone
    # acknowledged it (or the incident was closed); when it went unanswered, nobody was told
    # (see test_crash.py's xfail). Kept apart, so that the other counts still guard the rest.
    def page_of(key: str) -> int:
        return int(key.removeprefix("safeguard-page-").split("/")[0])

    for name in ("missing_page_dms", "missing_pd", "missing_emails"):
        keep = []
        for key in getattr(r, name):
            state = pages[page_of(key)].state if page_of(key) in pages else "?"
            if state == "unanswered":
                r.undelivered_unanswered.append(f"{name.removeprefix('missing_')} {key}")
            elif state not in ("acked", "withdrawn"):
                keep.append(key)
        setattr(r, name, keep)
    dropped = {t.id for t in tasks.values() if t.kind == "page_notify" and t.state == "done"
               and t.payload.get("page") in pages and pages[t.payload["page"]].state != "open"}
    r.missing_posts = [t for t in r.missing_posts if t not in dropped]
    return r


def run_crash(stack: CrashStack, *, kills: int, seed: int, database: str, gap=(0.1, 1.0),
              pause=(0.1, 0.4), deadline: float | None = None, settle_timeout: float = 120.0,
              real_lease: bool = False) -> Report:
    """Declarations all along while the bot is SIGKILLed `kills` times; then settle and count."""
    began = time.monotonic()
    rng = random.Random(seed)
    workload = Workload(stack, f"s{seed}", pause=pause, seed=seed)
    workload.start()
    try:
        stack.kill_loop(kills, rng, gap, deadline=deadline)
        workload.wait_answered(12, timeout=60)  # enough answers for the counts to mean something
    finally:
        declarations = workload.stop()
    settle = stack.settle(settle_timeout, real_lease=real_lease)
    report = count(stack, declarations, database=database)
    report.settle_seconds, report.seconds = settle, time.monotonic() - began
    return report


def run_storm(stack: CrashStack, storm, *, declarations: int, database: str, pause=(0.05, 0.2),
              settle_timeout: float = 60.0) -> Report:
    """`storm(stack)` starts the faults (and returns a function that ends them); `declarations`
    are sent meanwhile; then the faults end, the bot settles (no kill) and the run is counted."""
    began = time.monotonic()
    end = storm(stack)
    workload = Workload(stack, "storm", pause=pause, limit=declarations)
    workload.start()
    workload.join(120)
    sent = workload.stop()
    if end is not None:
        end()
    stack.sandbox.faults.clear()
    stack.wait_idle(settle_timeout)
    report = count(stack, sent, database=database)
    report.seconds = time.monotonic() - began
    report.settle_seconds = report.seconds
    return report
