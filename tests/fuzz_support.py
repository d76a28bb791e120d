"""Fuzzing the served bot: a `safeguard serve` subprocess against the sandbox, and Hypothesis
strategies for every request Slack sends it (slash commands, block_actions, view submissions,
message shortcuts, Events API callbacks), well-formed and malformed, signed and not.

Only `sandbox` and `tests.support` are imported: the bot is a black box started through its
console script, so this harness does not care where its modules live.

Every request is a `Probe`: the raw bytes, the content type, and how it is signed. `Stack.fire`
sends it and returns an `Outcome` (the HTTP status, and what the bot's log gained meanwhile).
Each probe carries a unique marker (`fz…`) inside its body, so a test can check that the body
of a refused request never reaches the log.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus, urlencode

import httpx
import yaml
from hypothesis import strategies as st

from sandbox.pagerduty import PagerDutyStandIn
from sandbox.payloads import VERIFICATION_TOKEN
from sandbox.server import Sandbox
from sandbox.smtp import SmtpStandIn
from tests.support import (
    DEMO_CONFIG,
    REPO,
    postgres_reachable,
    postgres_schema,
    wait_for,
    wait_serving,
)

SECRET = "fuzz-signing-secret"
PD_KEY = "fuzz0routing0key0000000000000000"  # 32 characters, as PagerDuty wants
LEAD, DEPUTY, SPEC, LEGAL, OUTSIDER = "U0LEAD001", "U0DEPU001", "U0SPEC001", "U0LEGAL01", "U0OUTSID1"
OPS, GENERAL = "C0OPS0001", "C0GENERAL"
TRACEBACK = "Traceback (most recent call last)"

# What the bot registers (handlers/ and app.yaml), kept here as data so the harness survives a
# refactor of the bot's modules. A new subcommand or listener belongs in these lists.
# tests/test_fuzz_coverage.py fails when the bot registers one they do not name.
SUBCOMMANDS = ["help", "declare", "status", "list", "done", "skip", "undo", "assign", "note", "correct",
               "page", "ack", "severity", "resolve", "close", "timeline", "report", "update", "viewed", "wellbeing",
               "break"]
ACTION_IDS = ["step_done", "step_skip", "step_undo", "incident_close", "incident_update", "incident_menu", "page_ack",
              "home_declare", "repeat_join", "repeat_declare", "open_channel"]
VIEW_CALLBACKS = ["declare", "step_fields", "step_skip", "step_undo", "incident_close", "status_update",
                  "incident_page", "incident_assign", "incident_resolve"]
SHORTCUTS = ["add_to_timeline"]
EVENTS = ["reaction_added", "member_joined_channel", "member_left_channel", "app_mention", "app_home_opened"]
COMMANDS = ["/incident"]
MENU_CHOICES = ["update", "page", "assign", "resolve", "close"]  # the checklist's overflow menu
NEXT_UPDATE = ["15m", "30m", "1h", "2h", "4h", "5m", "24h", "25h", "0m", "soon", "-1h"]
PLAYBOOKS = ["csam-report", "sextortion-minor", "grooming", "imminent-harm", "trafficking", "viral-spread",
             "le-emergency-request"]
ROLES = ["incident_lead", "deputy", "child_safety_specialist", "legal", "eu_counsel", "le_response", "policy",
         "comms"]
STEPS = ["confirm", "remove", "ncmec-report", "preservation-hold", "hold-review", "hash-share", "contain",
         "report", "triage"]
FIELDS = ["case_id", "category", "human_viewed", "account_action", "content_count", "report_id", "hold_ref",
          "decision", "reference", "hash_count", "programmes"]
SEVERITIES = ["sev1", "sev2", "sev3", "SEV1", "sev0", "sev4", "critical"]
USERS = [LEAD, DEPUTY, SPEC, "U0SPEC002", LEGAL, "U0GC00001", "U0COMMS01", OUTSIDER]

_markers = itertools.count(1)


def slack_signature(body: bytes, timestamp: str, secret: str = SECRET) -> str:
    """`v0=` + HMAC-SHA256 of `v0:{timestamp}:{body}` (over the raw bytes, as Slack signs)."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def new_marker() -> str:
    """A token that appears nowhere else: `fz` + a number + a random tail."""
    return f"fz{next(_markers):06d}q{os.urandom(4).hex()}"


# ============================================================================ the served bot


def safeguard_exe() -> list[str]:
    exe = Path(sys.executable).parent / "safeguard"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("safeguard")
    if found:
        return [found]
    raise RuntimeError("the `safeguard` console script is not installed (pip install -e .)")


class BotProcess:
    """`safeguard serve` in a subprocess; stdout and stderr both go to `log_path`."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [*safeguard_exe(), "serve", "--host", "127.0.0.1"],
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env}, cwd=str(REPO),
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        self.url = ""

    def wait_ready(self, timeout: float = 60.0) -> BotProcess:
        def listening() -> str | None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the bot exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            found = re.search(r"^Listening on (\S+)/slack/events$", self.log_text(), re.M)
            return found.group(1) if found else None

        self.url = wait_serving(listening, timeout)
        return self

    @property
    def events_url(self) -> str:
        return self.url + "/slack/events"

    def log_text(self, start: int = 0) -> str:
        with self.log_path.open("rb") as f:
            f.seek(start)
            return f.read().decode("utf-8", "replace")

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


def db_upgrade(database_url: str) -> None:
    """`safeguard db upgrade` (serve migrates SQLite by itself, not PostgreSQL)."""
    subprocess.run([*safeguard_exe(), "db", "upgrade"], check=True, cwd=str(REPO), capture_output=True,
                   env={**os.environ, "DATABASE_URL": database_url, "SAFEGUARD_CONFIG": str(DEMO_CONFIG)})


def write_config(folder: Path, pagerduty_url: str) -> Path:
    """The demo config, its PagerDuty aimed at the local stand-in (nothing leaves loopback)."""
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    data["pagers"]["pagerduty"]["events_url"] = pagerduty_url
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "safeguard.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    """A fresh database URL: `sqlite` (a file in `folder`) or `postgres` (a fresh schema)."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'safeguard-fuzz.db'}"
        return
    if not postgres_reachable():
        raise RuntimeError("PostgreSQL is not reachable")
    with postgres_schema() as url:
        yield url


# ============================================================================ probes


@dataclass
class Probe:
    """One HTTP request to the bot's /slack/events."""

    label: str  # what it is, for reports: "command: note …", "view_submission declare (no metadata)"
    body: bytes
    content_type: str = "application/x-www-form-urlencoded"
    signed: bool = True  # signed like Slack (with the right secret and a current timestamp)
    headers: dict[str, Any] | None = None  # replace the signing headers (unsigned, garbled; bytes allowed)
    marker: str = ""
    malformed: bool = False  # not something Slack sends

    def describe(self, limit: int = 300) -> str:
        body = self.body.decode("utf-8", "replace")
        if self.content_type.endswith("urlencoded"):
            body = unquote_plus(body)
        if len(body) > limit:
            body = body[:limit] + f"… ({len(self.body)} bytes)"
        head = "signed" if self.signed else f"headers={self.headers}"
        return f"{self.label} [{head}, {self.content_type}] {body}"


@dataclass
class Outcome:
    probe: Probe
    status: int | None  # None: no answer (connection error or timeout)
    elapsed: float
    log: str  # what the log gained while the request ran
    error: str | None = None

    @property
    def tracebacks(self) -> int:
        return self.log.count(TRACEBACK)


def form_probe(label: str, form: dict[str, Any], marker: str, **kw: Any) -> Probe:
    return Probe(label, urlencode(form).encode(), marker=marker, **kw)


def interaction_probe(label: str, payload: Any, marker: str, **kw: Any) -> Probe:
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    return Probe(label, urlencode({"payload": raw}).encode(), marker=marker, **kw)


def json_probe(label: str, payload: Any, marker: str, **kw: Any) -> Probe:
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    return Probe(label, raw.encode(), "application/json", marker=marker, **kw)


# ============================================================================ the stack


@dataclass
class Targets:
    """What exists in the workspace once the stack is seeded, for the strategies to aim at."""

    incidents: list[int] = field(default_factory=list)
    incident_channels: list[str] = field(default_factory=list)
    checklist_ts: dict[str, str] = field(default_factory=dict)  # channel -> the pinned checklist's ts
    human_ts: dict[str, str] = field(default_factory=dict)  # channel -> a message a person posted
    dm_channels: list[str] = field(default_factory=list)

    @property
    def channels(self) -> list[str]:
        return [*self.incident_channels, OPS, GENERAL, *self.dm_channels]


class Stack:
    """The sandbox, the PagerDuty and SMTP stand-ins and `safeguard serve`, on loopback.

    >>> with Stack(tmp, "sqlite") as stack:
    ...     stack.fire(probe)
    """

    def __init__(self, folder: Path, db: str = "sqlite", *, database_url: str | None = None) -> None:
        self.folder = folder
        self.db = db
        self.database_url = database_url
        self.targets = Targets()
        self.bot: BotProcess | None = None
        self._exits: list[Callable[[], None]] = []
        self._client = httpx.Client(timeout=15)
        self._log_lock = threading.Lock()
        self.checked = 0  # how much of the log `new_log` has handed out
        self.refused: list[Probe] = []  # every probe answered >= 400 (its body must never be logged)
        self.history: list[Outcome] = []
        self.seed_log = ""

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Stack:
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
        self._exits.append(self.sandbox.stop)
        self.smtp = SmtpStandIn().start()
        self._exits.append(self.smtp.stop)
        self.pagerduty = PagerDutyStandIn().start()
        self._exits.append(self.pagerduty.stop)
        if self.database_url is None:
            ctx = database(self.db, self.folder)
            self.database_url = ctx.__enter__()
            self._exits.append(lambda: ctx.__exit__(None, None, None))
        if not self.database_url.startswith("sqlite"):
            db_upgrade(self.database_url)
        config = write_config(self.folder, self.pagerduty.url)
        env = {
            "SLACK_BOT_TOKEN": self.sandbox.bot_token, "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": self.sandbox.api_url, "DATABASE_URL": self.database_url,
            "SAFEGUARD_SLACK_PACING": "on" if self.sandbox.limits.enabled else "off",
            "SAFEGUARD_CONFIG": str(config), "PORT": "0", "PD_ROUTING_KEY": PD_KEY, "SMTP_URL": self.smtp.url,
        }
        self.log_path = self.folder / "bot.log"
        self.bot = BotProcess({**env, "SLACK_APP_TOKEN": ""}, self.log_path)  # HTTP mode
        self._exits.append(self.bot.stop)
        self.bot.wait_ready()
        self.sandbox.set_bot_url(self.bot.events_url)

    def close(self) -> None:
        self._client.close()
        while self._exits:
            try:
                self._exits.pop()()
            except Exception as err:  # keep closing the rest
                print(f"fuzz stack: closing failed: {err!r}", file=sys.stderr)

    @property
    def driver(self):
        return self.sandbox.driver

    @property
    def ws(self):
        return self.sandbox.state

    # ------------------------------------------------------------------ seeding

    def seed(self, incidents: tuple[tuple[str, str], ...] = (("csam-report", "Hash match on upload 8812"),
                                                              ("grooming", "Adult contacting a minor, case 77"))):
        """Declare incidents (their channels, checklists), post a message a person wrote in each."""
        for number, (playbook, summary) in enumerate(incidents, start=1):
            answer = self.driver.command(LEAD, f"declare {playbook} {summary}")
            if not answer.ok:
                raise RuntimeError(f"declaring failed: {answer.status} {answer.text[:300]}")
            name = f"inc-{number}-{playbook}"
            channel = wait_for(lambda n=name: self.ws.channel_by_name(n), 30, what=name)
            wait_for(lambda c=channel: c.pins, 30, what=f"{name}'s checklist")
            wait_for(lambda c=channel: SPEC in c.members and LEAD in c.members, 30, what=f"{name}'s invites")
            self.targets.incidents.append(number)
            self.targets.incident_channels.append(channel.id)
            self.targets.checklist_ts[channel.id] = channel.pins[0]
            said = self.driver.post_as(SPEC, channel.id, "Confirmed: two files, case 8812, hash ab12")
            self.targets.human_ts[channel.id] = said.message.ts
        said = self.driver.post_as(SPEC, OPS, "Heads-up: case 8812 is being triaged")
        self.targets.human_ts[OPS] = said.message.ts
        for user in (LEAD, SPEC):
            self.targets.dm_channels.append(self.ws.dm_channel(user, create=True).id)
        self.quiet()
        self.seed_log = self.new_log()  # start-up and seeding: checked on their own
        return self.targets

    def quiet(self, seconds: float = 0.3, timeout: float = 15.0) -> None:
        """Wait until the bot's log has not grown for `seconds` (its work after the acks is done)."""
        deadline = time.monotonic() + timeout
        size, since = self.bot.log_size(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.bot.log_size()
            if now != size:
                size, since = now, time.monotonic()
            elif time.monotonic() - since >= seconds:
                return

    # ------------------------------------------------------------------ sending

    def response_url(self, channel: str, user: str, kind: str = "command") -> str:
        return self.ws.mint_response_url(self.sandbox.base_url, channel=channel, user=user, kind=kind)

    def trigger(self, user: str) -> str:
        return self.ws.mint_trigger(user)

    def fire(self, probe: Probe, *, timeout: float = 15.0) -> Outcome:
        """Send one probe; signed ones through the sandbox driver (it signs like Slack)."""
        with self._log_lock:
            start = self.bot.log_size()
        began = time.monotonic()
        status, error = None, None
        if probe.signed:
            ts = str(int(time.time()))  # the driver's transport, signed over the raw bytes
            result = self.driver.send(probe.body, probe.content_type, timestamp=ts, headers=probe.headers,
                                      signature=slack_signature(probe.body, ts), timeout=timeout)
            status, error = result.status, result.error if result.status is None else None
        else:
            try:
                answer = self._client.post(self.bot.events_url, content=probe.body, timeout=timeout,
                                           headers={"Content-Type": probe.content_type, **(probe.headers or {})})
                status = answer.status_code
            except httpx.HTTPError as err:
                error = f"{type(err).__name__}: {err}"
        elapsed = time.monotonic() - began
        return Outcome(probe, status, elapsed, self.bot.log_text(start), error)

    def log_text(self, start: int = 0) -> str:
        return self.bot.log_text(start)

    def new_log(self) -> str:
        """What the log gained since the last call (or since the stack was seeded)."""
        with self._log_lock:
            text = self.bot.log_text(self.checked)
            self.checked += len(text.encode("utf-8", "replace"))
        return text

    def probe(self, probe: Probe, *, settle: float = 0.05, timeout: float = 15.0) -> tuple[Outcome, str]:
        """Fire a probe, wait until the log is quiet for `settle` s; the outcome and the new log."""
        outcome = self.fire(probe, timeout=timeout)
        self.history.append(outcome)
        if outcome.status is None or outcome.status >= 400:
            self.refused.append(probe)
        self.quiet(settle, timeout=3 + settle * 10)
        return outcome, self.new_log()

    def check(self, outcome: Outcome, log: str) -> list[str]:
        """What is wrong with one probe's outcome, `log` being what the log gained meanwhile."""
        found = []
        if outcome.status is None or outcome.status >= 500:
            found.append(f"HTTP {outcome.status} {outcome.error or ''}")
        if TRACEBACK in log:
            found.append(f"traceback in the log: {last_lines(log)}")
            if len(self.history) > 1 and outcome.status is not None and outcome.status < 500:
                # not this request's own 500: work after an earlier ack may be the culprit
                found.append(f"(the request before was: {self.history[-2].probe.describe(150)})")
        if (outcome.status is None or outcome.status >= 400) and outcome.probe.marker and outcome.probe.marker in log:
            found.append("the refused request's body was logged: "
                         + next(line for line in log.splitlines() if outcome.probe.marker in line)[:300])
        return found


# ============================================================================ checking


def last_lines(log: str, n: int = 3) -> str:
    """The last lines of the first traceback in `log` (the exception and where it was raised)."""
    at = log.find(TRACEBACK)
    if at < 0:
        return ""
    lines = log[at:].splitlines()
    end = next((i for i, line in enumerate(lines[1:], 1) if line and not line.startswith((" ", "\t", "Traceback",
                                                                                            "During", "The above"))),
               len(lines) - 1)
    return " | ".join(x.strip() for x in lines[max(1, end - n + 1): end + 1])


def problems(outcomes: list[Outcome], final_log: str = "") -> list[str]:
    """Everything wrong with a batch of outcomes: a 5xx or no answer, a traceback in the log
    while it ran, a refused request's body in the log."""
    found = []
    for o in outcomes:
        if o.status is None or o.status >= 500:
            found.append(f"HTTP {o.status} {o.error or ''} for {o.probe.describe()}")
        if o.tracebacks:
            found.append(f"traceback ({last_lines(o.log)}) after {o.probe.describe()}")
    if TRACEBACK in final_log:
        found.append(f"traceback in the log after the batch: {last_lines(final_log)}")
    refused = [o.probe.marker for o in outcomes if o.probe.marker and (o.status is None or o.status >= 400)]
    for marker in refused:
        if marker in final_log:
            probe = next(o.probe for o in outcomes if o.probe.marker == marker)
            found.append(f"a refused request's body was logged: {probe.describe()}")
    return found


def status_class(status: int | None) -> str:
    return "none" if status is None else f"{status // 100}xx"


# ============================================================================ strategies: values

_any_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_mentions = st.sampled_from(["<!channel>", "<!here>", "<!everyone>", "<@U0LEAD001>", "<@U0SPEC001|chloe>",
                             "<@W0NOPE123>", "<@U0OUTSID1>", "<@UBOT000001>", "<!subteam^S0LEGAL|@legal>",
                             "<#C0OPS0001|t-and-s-ops>", "<https://evil.example|click>", "<@>", "<@U",
                             "<!date^1700000000^{date_short}|x>", "@ana", "&lt;@U0LEAD001&gt;"])
_numbers = st.one_of(
    st.integers(-10, 10).map(str),
    st.sampled_from(["99999999999999999999", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
                     "2147483648", "1e309", "NaN", "inf", "0x10", "１２", "٣", "00000000001", "1.5", "+1", ""]),
    st.integers().map(str),
)
_words = st.one_of(
    st.sampled_from([*STEPS, *ROLES, *PLAYBOOKS, *SEVERITIES, "md", "html", "json", "csv", "pdf", "--help", "-",
                     "=", "a=b", 'x="unclosed', "'", '"', "\\", "%s", "{0}", "{{x}}", "${x}", "NULL", "None",
                     "true", "\u00a0", "\u200b", "\u202e", "🚨", "📌", "ı", "ß", "İ"]),
    _mentions, _numbers, _any_text,
)


def long_text(sizes=(3000, 45000)) -> st.SearchStrategy[str]:
    return st.sampled_from(sizes).flatmap(
        lambda n: st.sampled_from(["x", "é", "🚨", "ab ", "<!channel> "]).map(lambda unit: (unit * n)[:n]))


def args_text() -> st.SearchStrategy[str]:
    separators = st.sampled_from([" ", "  ", "\t", "\n", "\u00a0", "\u3000"])
    words = st.lists(st.tuples(_words, separators), max_size=6).map(lambda ws: "".join(w + s for w, s in ws))
    return st.one_of(words, words, _any_text, long_text(), st.just(""))


def field_args() -> st.SearchStrategy[str]:
    pair = st.tuples(st.sampled_from([*FIELDS, "", "x"]), _words).map(
        lambda kv: f"{kv[0]}={json.dumps(kv[1]) if ' ' in kv[1] else kv[1]}")
    return st.tuples(st.sampled_from(STEPS), st.lists(pair, max_size=4)).map(lambda t: " ".join([t[0], *t[1]]))


def command_text() -> st.SearchStrategy[str]:
    """`/incident` texts: a subcommand (any case) and arguments fitting it, or noise."""
    sub = st.sampled_from(SUBCOMMANDS)
    cased = st.tuples(sub, st.sampled_from([str, str, str.upper, str.title])).map(lambda t: t[1](t[0]))
    specific = st.one_of(
        st.tuples(st.just("declare"), st.sampled_from(PLAYBOOKS), args_text()).map(" ".join),
        st.tuples(st.just("done"), field_args()).map(" ".join),
        st.tuples(st.sampled_from(["skip", "undo"]), st.sampled_from(STEPS), args_text()).map(" ".join),
        st.tuples(st.just("assign"), st.sampled_from(ROLES), _mentions).map(" ".join),
        st.tuples(st.just("page"), st.sampled_from([*ROLES, "nobody"]), args_text()).map(" ".join),
        st.tuples(st.just("correct"), _numbers, args_text()).map(" ".join),
        st.tuples(st.sampled_from(["note", "resolve"]), args_text()).map(" ".join),
        st.tuples(st.just("severity"), st.sampled_from(SEVERITIES)).map(" ".join),
        st.tuples(st.just("timeline"), st.sampled_from(["md", "html", "json", "csv", "pdf", "", "MD"])).map(" ".join),
        st.tuples(st.just("update"), st.one_of(st.just(""), args_text())).map(" ".join),
        st.tuples(st.just("report"), st.lists(st.sampled_from(["2026-11-01", "2026-11-30", "2026-13-45", "0000-00-00",
                                                               "9999-99-99", "2026-1-1", *PLAYBOOKS, "x"]),
                                              max_size=3).map(" ".join)).map(" ".join),
    )
    generic = st.tuples(cased, st.sampled_from([" ", "  ", "\u00a0"]), args_text()).map("".join)
    return st.one_of(specific, specific, generic, _any_text, long_text((3000,)))


# ============================================================================ strategies: requests


@st.composite
def slash_command(draw, stack: Stack, *, malformed: bool = False, text: st.SearchStrategy[str] | None = None):
    """A signed `/incident` form, as Slack sends it; `malformed` drops or garbles fields."""
    t = stack.targets
    user = draw(st.sampled_from([LEAD, LEAD, SPEC, LEGAL, OUTSIDER]))
    channel = draw(st.sampled_from(t.channels))
    body_text = draw(text if text is not None else command_text())
    marker = new_marker()
    form: dict[str, Any] = {
        "token": VERIFICATION_TOKEN, "team_id": stack.ws.team_id, "team_domain": stack.ws.team_domain,
        "channel_id": channel, "channel_name": "x", "user_id": user, "user_name": "x", "command": "/incident",
        "text": body_text, "api_app_id": stack.ws.app_id, "is_enterprise_install": "false",
        "response_url": stack.response_url(channel, user), "trigger_id": stack.trigger(user), "fz": marker,
    }
    label = f"command /incident {body_text[:120]!r} by {user} in {channel}"
    if malformed:
        how = draw(st.sampled_from(["drop", "drop", "garble", "command", "raw"]))
        if how == "drop":
            key = draw(st.sampled_from(["user_id", "channel_id", "text", "trigger_id", "response_url", "command",
                                        "team_id"]))
            form.pop(key)
            label += f" without {key}"
        elif how == "garble":
            key = draw(st.sampled_from(["user_id", "channel_id", "trigger_id", "response_url", "team_id"]))
            form[key] = draw(st.sampled_from(["", "0", "U", "<@U0LEAD001>", "null", "http://127.0.0.1:1/x",
                                              "x" * 300]))
            label += f" with {key}={form[key][:20]!r}"
        elif how == "command":
            form["command"] = draw(st.sampled_from(["/unknown", "/incidents", "", "incident", "/INCIDENT"]))
            label += f" as command {form['command']!r}"
        else:  # a signed body that is not a Slack form at all
            raw = draw(st.sampled_from([b"text=%ZZ&user_id=", b"&&&==", b"\xff\xfe\x00", b"{not json " + marker.encode(),
                                        b"payload=" + marker.encode(), b"payload=%7B%22type%22%3A", b"a" * 5000]))
            return Probe(f"signed raw form {raw[:40]!r}", raw + b"&fz=" + marker.encode(), marker=marker,
                         malformed=True)
    return form_probe(label, form, marker, malformed=malformed)


def truncate(draw, raw):
    """`raw` cut somewhere inside (a fraction is drawn, not an index: the length varies between runs
    with the ids minted, and Hypothesis wants the same draws for the same choices)."""
    return raw[: 1 + int(draw(st.floats(0, 1, exclude_max=True)) * (len(raw) - 1))]


def _user_ref(stack: Stack, user: str) -> dict[str, Any]:
    return {"id": user, "username": "x", "name": "x", "team_id": stack.ws.team_id}


def _team(stack: Stack) -> dict[str, Any]:
    return {"id": stack.ws.team_id, "domain": stack.ws.team_domain}


_CHECKLIST_ACTIONS = {"step_done", "step_skip", "step_undo", "incident_close", "incident_update", "incident_menu"}
_REPEAT_VALUES = ['{"playbook": 1, "summary": "x"}', "[]", "null", "not json", '{"playbook": "grooming"}',
                  '{"playbook": "grooming", "summary": "x", "incident": true}',
                  '{"playbook": "grooming", "summary": "x", "incident": "1"}',
                  '{"playbook": "grooming", "summary": "x", "incident": 1e400}',
                  '{"playbook": "nope", "summary": "", "severity": 5, "channel": []}',
                  '{"playbook": "grooming", "summary": "x", "severity": "sev9", "channel": "C0NOPE000"}']


def _home_view(stack: Stack, user: str) -> dict[str, Any]:
    """The Home tab as Slack reports it with a click in it."""
    return {"id": "V0HOME" + user[-3:], "team_id": stack.ws.team_id, "type": "home", "blocks": [],
            "private_metadata": "", "callback_id": "", "state": {"values": {}}, "hash": "1.home", "title": None,
            "close": None, "submit": None, "clear_on_close": False, "notify_on_close": False, "previous_view_id": None,
            "root_view_id": "V0HOME" + user[-3:], "app_id": stack.ws.app_id, "external_id": "", "app_installed_team_id":
            stack.ws.team_id, "bot_id": "B0SAFEGRD"}


def _action_element(draw, stack: Stack, action_id: str, number: int, channel: str) -> dict[str, Any]:
    """The `actions[0]` Slack sends for a click on the element the bot rendered with `action_id`."""
    t = stack.targets
    action: dict[str, Any] = {"action_id": action_id, "block_id": draw(st.sampled_from(["actions", "b", "xY1z"])),
                              "type": "button", "text": {"type": "plain_text", "text": "x", "emoji": True},
                              "action_ts": f"{time.time():.6f}"}
    if action_id in ("step_done", "step_skip", "step_undo"):
        action["value"] = draw(st.one_of(st.sampled_from(STEPS).map(lambda s: f"{number}:{s}"),
                                         st.tuples(_numbers, st.sampled_from(STEPS)).map(":".join)))
    elif action_id == "incident_close":
        action["value"] = draw(st.one_of(st.just(str(number)), _numbers))
    elif action_id == "incident_update":
        action["value"] = draw(st.one_of(st.just(f"{number}:update"), _numbers.map(lambda n: f"{n}:update")))
    elif action_id == "incident_menu":  # an overflow menu: no value, the option chosen
        choice = draw(st.sampled_from([*MENU_CHOICES, "nope", ""]))
        of = draw(st.one_of(st.just(str(number)), _numbers))
        del action["text"]
        action.update(type="overflow", selected_option={"text": {"type": "plain_text", "text": choice, "emoji": True},
                                                       "value": f"{of}:{choice}"})
    elif action_id == "page_ack":
        action["value"] = draw(st.one_of(st.integers(1, 5).map(str), _numbers))
    elif action_id == "home_declare":
        action.update(value="declare", style="danger")
    elif action_id in ("repeat_join", "repeat_declare"):
        given = {"playbook": draw(st.sampled_from([*PLAYBOOKS, "nope"])),
                 "summary": draw(st.one_of(_words, st.just("Hash match on upload 8812"))),
                 "severity": draw(st.sampled_from([None, "sev1", "sev2", "sev9"])),
                 "channel": draw(st.sampled_from([None, OPS, channel, *t.dm_channels]))}
        if action_id == "repeat_join":
            given["incident"] = draw(st.sampled_from([*t.incidents, 999, 0]))
        action["value"] = json.dumps(given, ensure_ascii=False, separators=(",", ":"))
    else:  # open_channel: a link button (a url, no value)
        action["url"] = f"https://{stack.ws.team_domain}.slack.com/archives/{channel}"
    return action


@st.composite
def block_action(draw, stack: Stack, *, malformed: bool = False, action_id: str | None = None):
    """A click on a button or menu the bot rendered (`block_actions`), every action id it registers:
    the checklist's in an incident channel, a page's in a DM, the Home tab's, a declaration's
    question and confirmation (ephemeral)."""
    t = stack.targets
    user = draw(st.sampled_from([LEAD, SPEC, LEGAL, OUTSIDER]))
    action_id = action_id or draw(st.sampled_from(ACTION_IDS))
    number = draw(st.sampled_from([*t.incidents, 0, 999]))
    if action_id in _CHECKLIST_ACTIONS:
        channel = draw(st.sampled_from(t.incident_channels))
        where = "checklist"
    elif action_id == "page_ack":
        where = draw(st.sampled_from(["message", "home"]))
        channel = draw(st.sampled_from(t.dm_channels))
    elif action_id == "home_declare":
        channel, where = "", "home"
    else:  # the repeat question and the confirmation's Open: ephemeral, where it was declared
        channel = draw(st.sampled_from([OPS, *t.incident_channels, *t.dm_channels]))
        where = "ephemeral"
    action = _action_element(draw, stack, action_id, number, channel)
    value = action.get("value", action.get("selected_option"))
    marker = new_marker()
    action["block_id"] += f"-{marker}"  # the marker, to find the body in the log
    payload: dict[str, Any] = {
        "type": "block_actions", "user": _user_ref(stack, user), "api_app_id": stack.ws.app_id,
        "token": VERIFICATION_TOKEN, "trigger_id": stack.trigger(user), "team": _team(stack), "enterprise": None,
        "is_enterprise_install": False, "actions": [action],
    }
    if where == "home":
        view = _home_view(stack, user)
        payload.update(container={"type": "view", "view_id": view["id"]}, view=view)
    else:
        ts = t.checklist_ts.get(channel) or t.human_ts.get(channel) or "1700000000.000100"
        payload.update(
            container={"type": "message", "message_ts": ts, "channel_id": channel,
                       "is_ephemeral": where == "ephemeral"},
            channel={"id": channel, "name": "x"}, state={"values": {}},
            response_url=stack.response_url(channel, user, "block_actions"))
        if where != "ephemeral":  # Slack leaves `message` out for ephemeral messages
            payload["message"] = {"type": "message", "ts": ts, "text": "", "blocks": []}
    label = f"block_actions {action_id} value={value!r} by {user} ({where})"
    if malformed:
        how = draw(st.sampled_from(["empty_actions", "value_type", "no_user_id", "no_user", "no_value",
                                    "no_trigger", "action_type", "unknown_action", "not_json", "json_type",
                                    "no_container", "no_actions", "option", "container", "repeat_value",
                                    "wrong_type"]))
        label = f"block_actions {action_id} ({how})"
        if how == "empty_actions":
            payload["actions"] = []
        elif how == "no_actions":
            del payload["actions"]
        elif how == "value_type":
            action["value"] = draw(st.sampled_from([1, 10**30, -1, 1.5, None, True, [], {"a": 1}]))
            label += f" value={action['value']!r}"
        elif how == "no_user_id":
            del payload["user"]["id"]
        elif how == "no_user":
            payload["user"] = draw(st.sampled_from([None, "U0LEAD001", {}, []]))
        elif how == "no_value":
            action.pop("value", None)
            action.pop("selected_option", None)
        elif how == "no_trigger":
            del payload["trigger_id"]
        elif how == "action_type":
            payload["actions"] = draw(st.sampled_from([[None], ["step_done"], {"0": action}, [[action]]]))
        elif how == "unknown_action":
            action["action_id"] = draw(st.sampled_from(["step_nope", "", "STEP_DONE", "page-ack", None, 5]))
        elif how == "no_container":
            payload.pop("container", None)
            payload.pop("channel", None)
        elif how == "option":  # what an overflow menu (or a select) may carry instead of its option
            action["selected_option"] = draw(st.sampled_from([None, 1, "1:close", [], {}, {"value": 1},
                                                              {"value": ["1:close"]}, {"value": "1:nope"}]))
            label += f" selected_option={action['selected_option']!r}"
        elif how == "container":
            payload["container"] = draw(st.sampled_from([None, "", "x", {}, {"type": "view"},
                                                         {"type": "message", "channel_id": 5}, {"channel_id": []}]))
            label += f" container={payload['container']!r}"
        elif how == "repeat_value":
            action["value"] = draw(st.sampled_from(_REPEAT_VALUES))
            label += f" value={action['value']!r}"
        elif how == "wrong_type":
            key = draw(st.sampled_from(sorted(k for k in action if k != "action_id")))
            action[key] = draw(st.sampled_from([None, 1, 10**30, [], {}, "", True]))
            label += f" {key}={action[key]!r}"
        elif how == "json_type":
            return interaction_probe(label, draw(st.sampled_from(["[]", "null", "1", '"x"', '{"type": 1}'])),
                                     marker, malformed=True)
        else:
            raw = json.dumps(payload)
            return interaction_probe(label + " truncated", truncate(draw, raw), marker,
                                     malformed=True)
    return interaction_probe(label, payload, marker, malformed=malformed)


def _view(stack: Stack, callback_id: str, metadata: Any, values: dict[str, Any], marker: str) -> dict[str, Any]:
    blocks = [{"type": "input", "block_id": b, "label": {"type": "plain_text", "text": b},
               "element": {"type": v.get("type", "plain_text_input"), "action_id": "value"}} for b, v in values.items()
              if isinstance(v, dict)]
    return {
        "id": "V0" + marker[-8:].upper(), "team_id": stack.ws.team_id, "type": "modal", "callback_id": callback_id,
        "private_metadata": metadata, "blocks": blocks,
        "state": {"values": {b: {"value": v} for b, v in values.items()}}, "hash": "1." + marker,
        "title": {"type": "plain_text", "text": "x"}, "submit": None, "close": None, "previous_view_id": None,
        "root_view_id": "V0ROOT", "app_id": stack.ws.app_id, "external_id": "", "bot_id": "B0SAFEGRD",
        "clear_on_close": False, "notify_on_close": False,
    }


def _text_input(value: Any) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


def _select(value: Any) -> dict[str, Any]:
    option = None if value is None else {"text": {"type": "plain_text", "text": str(value)}, "value": value}
    return {"type": "static_select", "selected_option": option}


def _users_select(user: Any) -> dict[str, Any]:
    return {"type": "users_select", "selected_user": user}


def _maybe(draw, value: dict[str, Any]) -> dict[str, Any]:
    """An optional input: left empty (Slack sends `value: null`) or filled."""
    return value if draw(st.booleans()) else {**value, "value": None}


@st.composite
def view_submission(draw, stack: Stack, *, malformed: bool = False, callback_id: str | None = None):
    """A modal submission for each callback id the bot registers, its blocks as the bot's form has them."""
    t = stack.targets
    user = draw(st.sampled_from([LEAD, SPEC, OUTSIDER]))
    callback_id = callback_id or draw(st.sampled_from(VIEW_CALLBACKS))
    marker = new_marker()
    short = st.one_of(_words, st.just(""), long_text((3000,)))
    number = draw(st.sampled_from([*t.incidents, 999]))
    metadata: Any = json.dumps({"incident": number})
    if callback_id == "declare":
        metadata = json.dumps({"channel": draw(st.sampled_from([OPS, GENERAL, *t.dm_channels, ""]))})
        values = {"playbook": _select(draw(st.sampled_from([*PLAYBOOKS, "nope", ""]))),
                  "summary": _text_input(draw(short)),
                  "severity": _select(draw(st.sampled_from([None, "sev1", "sev2", "sev3", "sev9"])))}
    elif callback_id in ("step_fields", "step_skip", "step_undo"):
        metadata = json.dumps({"incident": number, "step": draw(st.sampled_from(STEPS))})
        if callback_id == "step_fields":
            keys = draw(st.lists(st.sampled_from([*FIELDS, "viewed", "viewed_items", "viewed_kind"]), max_size=4, unique=True))
            values = {k: draw(st.sampled_from([_text_input, _select]))(draw(_words)) for k in keys}
        else:
            values = {"reason": _text_input(draw(short))}
    elif callback_id == "incident_close":  # the reason only when legal steps are still open
        values = draw(st.sampled_from([{}, {"reason": _text_input(draw(short))}]))
    elif callback_id == "status_update":
        values = {"state": _text_input(draw(short)), "next": _maybe(draw, _text_input(draw(short))),
                  "next_update": _select(draw(st.sampled_from([*NEXT_UPDATE, None])))}
    elif callback_id == "incident_page":
        values = {"role": _select(draw(st.sampled_from([*ROLES, "nobody", None]))),
                  "reason": _maybe(draw, _text_input(draw(short)))}
    elif callback_id == "incident_assign":
        values = {"role": _select(draw(st.sampled_from([*ROLES, "nobody", None]))),
                  "user": _users_select(draw(st.sampled_from([*USERS, "W0NOPE123", "U", None])))}
    else:  # incident_resolve
        values = {"summary": _maybe(draw, _text_input(draw(short)))}
    label = f"view_submission {callback_id} metadata={metadata!r} by {user}"
    if malformed:
        how = draw(st.sampled_from(["no_metadata", "metadata", "metadata", "no_user_id", "state", "no_view",
                                    "not_json", "unknown_callback", "no_state", "element", "element"]))
        label = f"view_submission {callback_id} ({how})"
        if how == "no_metadata":
            metadata = None
        elif how == "metadata":
            metadata = draw(st.sampled_from(["", "not json", "{", "[]", "null", "1", '"x"', "{}", '{"incident": "1"}',
                                             '{"incident": 99999999999999999999, "step": "confirm"}',
                                             '{"incident": null, "step": null}', '{"incident": [1], "step": {}}',
                                             '{"channel": 5}', '{"channel": "C0NOPE000"}', '{"step": "confirm"}']))
            label += f" private_metadata={metadata!r}"
    view = _view(stack, callback_id, metadata, values, marker)
    if malformed and how == "no_metadata":
        del view["private_metadata"]
    payload: dict[str, Any] = {
        "type": "view_submission", "team": _team(stack), "user": _user_ref(stack, user),
        "api_app_id": stack.ws.app_id, "token": VERIFICATION_TOKEN, "trigger_id": stack.trigger(user),
        "view": view, "response_urls": [], "enterprise": None, "is_enterprise_install": False, "fz": marker,
    }
    if malformed:
        if how == "no_user_id":
            del payload["user"]["id"]
        elif how == "state":
            view["state"] = draw(st.sampled_from([{"values": []}, {"values": {"summary": {"value": 1}}},
                                                  {"values": {"summary": None}}, {"values": None}, "x",
                                                  {"values": {"playbook": {"value": {"type": "static_select",
                                                                                     "selected_option": "x"}}}}]))
        elif how == "no_state":
            del view["state"]
        elif how == "element":  # one input's element garbled (what the form's block names, wrongly typed)
            block = draw(st.sampled_from(sorted(values) or ["reason"]))
            view["state"]["values"][block] = draw(st.sampled_from([
                {"value": {"type": "static_select", "selected_option": {"value": 1}}},
                {"value": {"type": "static_select", "selected_option": "x"}},
                {"value": {"type": "users_select", "selected_user": ["U0LEAD001"]}},
                {"value": {"type": "plain_text_input", "value": {"a": 1}}},
                {"value": {"type": "plain_text_input", "value": 10**30}}, {"value": None}, {"value": []}, [], "x"]))
            label += f" {block}={view['state']['values'][block]!r}"
        elif how == "no_view":
            payload["view"] = draw(st.sampled_from([None, {}, "x", {"callback_id": callback_id}]))
        elif how == "unknown_callback":
            view["callback_id"] = draw(st.sampled_from(["nope", "", "DECLARE"]))
        elif how == "not_json":
            raw = json.dumps(payload)
            return interaction_probe(label + " truncated", truncate(draw, raw), marker,
                                     malformed=True)
    return interaction_probe(label, payload, marker, malformed=malformed)


@st.composite
def message_shortcut(draw, stack: Stack, *, malformed: bool = False):
    """The "Add to timeline" message shortcut."""
    t = stack.targets
    user = draw(st.sampled_from([LEAD, SPEC, OUTSIDER]))
    channel = draw(st.sampled_from([*t.incident_channels, OPS]))
    ts = t.human_ts.get(channel, "1700000000.000100")
    marker = new_marker()
    message = {"type": "message", "user": SPEC, "ts": ts, "text": draw(st.one_of(_words, long_text((3000,))))}
    payload: dict[str, Any] = {
        "type": "message_action", "token": VERIFICATION_TOKEN, "action_ts": str(time.time()), "team": _team(stack),
        "user": _user_ref(stack, user), "channel": {"id": channel, "name": "x"}, "is_enterprise_install": False,
        "enterprise": None, "callback_id": "add_to_timeline", "trigger_id": stack.trigger(user),
        "response_url": stack.response_url(channel, user, "message_action"), "message_ts": ts, "message": message,
        "fz": marker,
    }
    label = f"message_action add_to_timeline on {channel}/{ts} by {user}"
    if malformed:
        how = draw(st.sampled_from(["no_message", "no_channel", "no_user_id", "message_type", "no_ts"]))
        label = f"message_action add_to_timeline ({how})"
        if how == "no_message":
            del payload["message"]
        elif how == "no_channel":
            del payload["channel"]
        elif how == "no_user_id":
            del payload["user"]["id"]
        elif how == "message_type":
            payload["message"] = draw(st.sampled_from([None, "x", [], {"text": 5}]))
        else:
            del message["ts"]
    return interaction_probe(label, payload, marker, malformed=malformed)


@st.composite
def event_callback(draw, stack: Stack, *, malformed: bool = False, kind: str | None = None):
    """An Events API callback, every event the bot subscribes to."""
    t = stack.targets
    kind = kind or draw(st.sampled_from(EVENTS))
    user = draw(st.sampled_from(USERS))
    # As Slack sends them: from channels the bot is in, about messages that exist
    channel = draw(st.sampled_from([*t.incident_channels, OPS]))
    marker = new_marker()
    ts = draw(st.sampled_from([t.human_ts[channel], t.checklist_ts.get(channel, t.human_ts[channel])]))
    event_ts = f"{time.time():.6f}"
    if kind == "reaction_added":
        event: dict[str, Any] = {"type": kind, "user": user,
                                 "reaction": draw(st.sampled_from(["pushpin", "round_pushpin", "eyes", "+1"])),
                                 "item": {"type": "message", "channel": channel, "ts": ts}, "item_user": SPEC,
                                 "event_ts": event_ts}
    elif kind in ("member_joined_channel", "member_left_channel"):
        event = {"type": kind, "user": user, "channel": channel, "channel_type": "G", "team": stack.ws.team_id,
                 "event_ts": event_ts}
        if kind == "member_joined_channel" and draw(st.booleans()):
            event["inviter"] = LEAD
    elif kind == "app_home_opened":  # from the person's DM with the bot; `view` once a Home tab was published
        event = {"type": kind, "user": user, "channel": draw(st.sampled_from([*t.dm_channels, "D0NEW0001"])),
                 "tab": draw(st.sampled_from(["home", "home", "messages", "about"])), "event_ts": event_ts}
        if draw(st.booleans()):
            event["view"] = _home_view(stack, user)
    else:
        event = {"type": kind, "user": user, "text": f"<@{stack.ws.bot_user_id}> {draw(_words)}", "ts": ts,
                 "channel": channel, "event_ts": event_ts, "team": stack.ws.team_id}
    event["fz"] = marker
    payload: dict[str, Any] = {
        "token": VERIFICATION_TOKEN, "team_id": stack.ws.team_id, "api_app_id": stack.ws.app_id, "event": event,
        "type": "event_callback", "event_id": f"Ev{marker.upper()}", "event_time": int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": stack.ws.team_id, "user_id": stack.ws.bot_user_id,
                            "is_bot": True, "is_enterprise_install": False}],
    }
    label = f"event {kind} {json.dumps({k: v for k, v in event.items() if k != 'fz'})[:200]}"
    if malformed:
        how = draw(st.sampled_from(["drop", "drop", "drop", "wrong_type", "no_event_id", "event_type", "not_json",
                                    "envelope_type", "gone"]))
        label = f"event {kind} ({how})"
        if how == "gone":  # a channel or message that does not exist (any more)
            if "item" in event:
                event["item"]["ts"] = draw(st.sampled_from(["1700000000.000100", "9999999999.999999", "x"]))
            else:
                event["channel"] = draw(st.sampled_from(["C0NOPE000", "D0NOPE000", "G0NOPE000"]))
            label += f" {json.dumps(event)[:200]}"
        elif how == "drop":
            keys = [k for k in event if k not in ("type", "fz")] + (["item.channel", "item.ts", "item.type"]
                                                                    if "item" in event else [])
            key = draw(st.sampled_from(keys))
            if key.startswith("item."):
                del event["item"][key[5:]]
            else:
                del event[key]
            label += f" without {key}"
        elif how == "wrong_type":  # a key of the event, or of its item or view
            inner = [f"{k}.{kk}" for k in ("item", "view") if isinstance(event.get(k), dict) for kk in event[k]]
            key = draw(st.sampled_from([*(k for k in event if k not in ("type", "fz")), *inner]))
            where, _, leaf = key.rpartition(".")
            (event[where] if where else event)[leaf] = draw(st.sampled_from([None, 1, 10**30, [], {}, "", True]))
            label += f" {key}={(event[where] if where else event)[leaf]!r}"
        elif how == "no_event_id":
            payload["event_id"] = draw(st.sampled_from([None, 5, ""]))
            label += f" event_id={payload['event_id']!r}"
        elif how == "event_type":
            payload["event"] = draw(st.sampled_from([None, "x", [], {"type": "nope"}, {}]))
        elif how == "envelope_type":
            payload["type"] = draw(st.sampled_from(["nope", "", None, "url_verification"]))
        else:
            raw = json.dumps(payload)
            return json_probe(label + " truncated", truncate(draw, raw), marker, malformed=True)
    return json_probe(label, payload, marker, malformed=malformed)


@st.composite
def unsigned_request(draw, stack: Stack):
    """A request not (validly) signed by Slack: no headers, a bad timestamp or signature, old,
    from the future, or signed with another secret; with any body, truncated or not."""
    marker = new_marker()
    kind = draw(st.sampled_from(["form", "interaction", "json", "raw"]))
    if kind == "form":
        body = urlencode({"command": "/incident", "text": f"declare csam-report {marker}", "user_id": LEAD,
                          "channel_id": OPS}).encode()
        ctype = "application/x-www-form-urlencoded"
    elif kind == "interaction":
        body = urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": LEAD}, "fz": marker,
                                                 "actions": [{"action_id": "step_done", "value": "1:confirm"}]})
                          }).encode()
        ctype = "application/x-www-form-urlencoded"
    elif kind == "json":
        body = json.dumps({"type": "event_callback", "event_id": "Ev" + marker,
                           "event": {"type": "app_mention", "text": marker, "channel": OPS}}).encode()
        ctype = "application/json"
    else:
        body = draw(st.sampled_from([b"", b"{", b"[]", b"null", b"\xff\xfe", b"payload=%7B", b"a=b"])) + marker.encode()
        ctype = draw(st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain", ""]))
    if draw(st.booleans()) and len(body) > 2:
        body = truncate(draw, body) + marker.encode()
    now = int(time.time())
    headers_kind = draw(st.sampled_from(["none", "ts_abc", "ts_empty", "ts_float", "ts_huge", "old", "future",
                                         "bad_sig", "other_secret", "no_sig", "sig_garbage", "no_ts"]))
    def good(ts: str) -> str:
        return slack_signature(body, ts)

    headers: dict[str, Any] = {
        "none": {},
        "ts_abc": {"X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=" + "0" * 64},
        "ts_empty": {"X-Slack-Request-Timestamp": "", "X-Slack-Signature": good("")},
        "ts_float": {"X-Slack-Request-Timestamp": f"{now}.5", "X-Slack-Signature": good(f"{now}.5")},
        "ts_huge": {"X-Slack-Request-Timestamp": "9" * 30, "X-Slack-Signature": good("9" * 30)},
        "old": {"X-Slack-Request-Timestamp": str(now - 3600), "X-Slack-Signature": good(str(now - 3600))},
        "future": {"X-Slack-Request-Timestamp": str(now + 3600), "X-Slack-Signature": good(str(now + 3600))},
        "bad_sig": {"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": "v0=" + "f" * 64},
        "other_secret": {"X-Slack-Request-Timestamp": str(now),
                         "X-Slack-Signature": slack_signature(body, str(now), "not-the-secret")},
        "no_sig": {"X-Slack-Request-Timestamp": str(now)},
        "sig_garbage": {"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": b"v0=\xc3\xa9t\xc3\xa9\xff"},
        "no_ts": {"X-Slack-Signature": good(str(now))},
    }[headers_kind]
    label = f"unsigned {kind} ({headers_kind})"
    return Probe(label, body, ctype, signed=False, headers=headers, marker=marker, malformed=True)


def any_request(stack: Stack) -> st.SearchStrategy[Probe]:
    """Everything at once, mostly well-formed."""
    return st.one_of(
        slash_command(stack), slash_command(stack), block_action(stack), view_submission(stack),
        message_shortcut(stack), event_callback(stack),
        slash_command(stack, malformed=True), block_action(stack, malformed=True),
        view_submission(stack, malformed=True), message_shortcut(stack, malformed=True),
        event_callback(stack, malformed=True), unsigned_request(stack),
    )


def malformed_interaction(stack: Stack) -> st.SearchStrategy[Probe]:
    """What the bench sends 2,000 of: malformed interactions, events and unsigned requests."""
    return st.one_of(
        block_action(stack, malformed=True), view_submission(stack, malformed=True),
        message_shortcut(stack, malformed=True), event_callback(stack, malformed=True), unsigned_request(stack),
    )


# ============================================================================ known bad cases


def command_probe(stack: Stack, text: str, *, user: str = LEAD, channel: str | None = None,
                  drop: tuple[str, ...] = ()) -> Probe:
    channel = channel or stack.targets.incident_channels[0]
    marker = new_marker()
    form = {"token": VERIFICATION_TOKEN, "team_id": stack.ws.team_id, "team_domain": stack.ws.team_domain,
            "channel_id": channel, "channel_name": "x", "user_id": user, "user_name": "x", "command": "/incident",
            "text": text, "api_app_id": stack.ws.app_id, "is_enterprise_install": "false",
            "response_url": stack.response_url(channel, user), "trigger_id": stack.trigger(user), "fz": marker}
    for key in drop:
        form.pop(key, None)
    shown = text if len(text) <= 80 else f"{text[:60]}… ({len(text)} chars)"
    return form_probe(f"command /incident {shown!r}" + (f" without {', '.join(drop)}" if drop else ""), form, marker)


def button_probe(stack: Stack, action_id: str, value: Any, *, user: Any = LEAD,
                 actions: list | None = None, response_url: Any = "__mint__") -> Probe:
    channel = stack.targets.incident_channels[0]
    ts = stack.targets.checklist_ts[channel]
    marker = new_marker()
    user_ref = _user_ref(stack, LEAD) if user == LEAD else user
    payload = {
        "type": "block_actions", "user": user_ref, "api_app_id": stack.ws.app_id, "token": VERIFICATION_TOKEN,
        "trigger_id": stack.trigger(LEAD), "team": _team(stack),
        "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
        "channel": {"id": channel, "name": "x"}, "message": {"type": "message", "ts": ts, "text": ""},
        "state": {"values": {}},
        "response_url": stack.response_url(channel, LEAD, "block_actions") if response_url == "__mint__"
        else response_url,
        "actions": actions if actions is not None else [
            {"action_id": action_id, "block_id": "b", "type": "button", "value": value, "action_ts": "1.2"}],
        "fz": marker,
    }
    return interaction_probe(f"block_actions {action_id} value={value!r} user={user!r} actions={actions!r}"
                             + ("" if response_url == "__mint__" else f" response_url={response_url!r}"),
                             payload, marker)


def home_probe(stack: Stack, action_id: str, value: Any = "declare", *, container: Any = None) -> Probe:
    """A click in the Home tab (no channel, no response_url); `container` replaces Slack's."""
    marker = new_marker()
    view = _home_view(stack, LEAD)
    payload = {"type": "block_actions", "user": _user_ref(stack, LEAD), "api_app_id": stack.ws.app_id,
               "token": VERIFICATION_TOKEN, "trigger_id": stack.trigger(LEAD), "team": _team(stack),
               "container": container if container is not None else {"type": "view", "view_id": view["id"]},
               "view": view, "fz": marker,
               "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "value": value,
                            "action_ts": "1.2"}]}
    return interaction_probe(f"block_actions {action_id} in the Home tab value={value!r} container={container!r}",
                             payload, marker)


def view_probe(stack: Stack, callback_id: str, metadata: Any = "__default__", *, user_id: bool = True,
               values: dict[str, Any] | None = None, view_keys: dict[str, Any] | None = None) -> Probe:
    marker = new_marker()
    if metadata == "__default__":
        metadata = json.dumps({"channel": OPS} if callback_id == "declare"
                              else {"incident": stack.targets.incidents[0], "step": "confirm"})
    if values is None:
        values = {"declare": {"playbook": _select("csam-report"), "summary": _text_input("Hash match 1")},
                  "step_skip": {"reason": _text_input("not needed")},
                  "step_fields": {"case_id": _text_input("C-1")}}.get(callback_id, {"reason": _text_input("x")})
    view = _view(stack, callback_id, metadata, values, marker)
    if metadata is None:
        del view["private_metadata"]
    view.update(view_keys or {})
    user = _user_ref(stack, LEAD)
    if not user_id:
        del user["id"]
    payload = {"type": "view_submission", "team": _team(stack), "user": user, "api_app_id": stack.ws.app_id,
               "token": VERIFICATION_TOKEN, "trigger_id": stack.trigger(LEAD), "view": view, "response_urls": [],
               "fz": marker}
    return interaction_probe(f"view_submission {callback_id} private_metadata={metadata!r}"
                             + ("" if user_id else " without user.id") + (f" view {view_keys}" if view_keys else ""),
                             payload, marker)


def event_probe(stack: Stack, event: dict[str, Any]) -> Probe:
    marker = new_marker()
    payload = {"token": VERIFICATION_TOKEN, "team_id": stack.ws.team_id, "api_app_id": stack.ws.app_id,
               "event": {**event, "fz": marker}, "type": "event_callback", "event_id": f"Ev{marker.upper()}",
               "event_time": int(time.time()),
               "authorizations": [{"team_id": stack.ws.team_id, "user_id": stack.ws.bot_user_id, "is_bot": True,
                                   "is_enterprise_install": False}]}
    return json_probe(f"event {json.dumps(event)}", payload, marker)


def raw_probe(label: str, body: bytes, content_type: str, headers: dict[str, str] | None, *,
              signed: bool = False) -> Probe:
    marker = new_marker()
    return Probe(label, body + marker.encode(), content_type, signed=signed, headers=headers, marker=marker,
                 malformed=True)


def known_cases() -> dict[str, Callable[[Stack], Probe]]:
    """Known bad inputs (the hardening issue's, then the sweep's), by name; each builds its probe from the stack."""
    now = lambda: str(int(time.time()))  # noqa: E731
    inc = lambda s: s.targets.incident_channels[0]  # noqa: E731
    return {
        "view-declare-no-private-metadata": lambda s: view_probe(s, "declare", None),
        "view-declare-non-json-metadata": lambda s: view_probe(s, "declare", "not json {"),
        "view-step-fields-no-private-metadata": lambda s: view_probe(s, "step_fields", None),
        "view-step-fields-non-json-metadata": lambda s: view_probe(s, "step_fields", "{"),
        "view-step-skip-no-private-metadata": lambda s: view_probe(s, "step_skip", None),
        "view-step-skip-non-json-metadata": lambda s: view_probe(s, "step_skip", "[1, 2"),
        "view-step-skip-metadata-a-list": lambda s: view_probe(s, "step_skip", "[]"),
        "view-declare-without-user-id": lambda s: view_probe(s, "declare", user_id=False),
        "view-step-fields-without-user-id": lambda s: view_probe(s, "step_fields", user_id=False),
        "button-empty-actions": lambda s: button_probe(s, "step_done", None, actions=[]),
        "button-step-done-integer-value": lambda s: button_probe(s, "step_done", 1),
        "button-page-ack-integer-value": lambda s: button_probe(s, "page_ack", 1),
        "button-step-undo-without-user-id": lambda s: button_probe(s, "step_undo", "1:confirm",
                                                                   user={"name": "ana"}),
        "button-page-ack-without-user-id": lambda s: button_probe(s, "page_ack", "1", user={"name": "ana"}),
        "unsigned-timestamp-abc": lambda s: raw_probe(
            "unsigned, X-Slack-Request-Timestamp: abc", b"command=%2Fincident&text=declare+csam-report+x",
            "application/x-www-form-urlencoded", {"X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=00"}),
        "unsigned-truncated-json": lambda s: raw_probe(
            "unsigned truncated JSON", b'{"type": "event_callback", "event": {"type": "app_mention", "text": "',
            "application/json", {"X-Slack-Request-Timestamp": now(), "X-Slack-Signature": "v0=00"}),
        "unsigned-truncated-json-no-headers": lambda s: raw_probe(
            "unsigned truncated JSON, no Slack headers", b'{"type": "event_callback", "x": "', "application/json", {}),
        "unsigned-truncated-payload-form": lambda s: raw_probe(
            "unsigned form with a truncated JSON payload", b"payload=%7B%22type%22%3A%22block_actions",
            "application/x-www-form-urlencoded", {"X-Slack-Request-Timestamp": now(), "X-Slack-Signature": "v0=00"}),
        "signed-truncated-json": lambda s: raw_probe(
            "signed truncated JSON", b'{"type": "event_callback", "event": {"type": "app_mention", "text": "',
            "application/json", None, signed=True),
        "signed-non-json-payload-form": lambda s: raw_probe(
            "signed form whose payload is not JSON", b"payload=not-json-", "application/x-www-form-urlencoded",
            None, signed=True),
        "command-correct-integer-overflow": lambda s: command_probe(s, "correct 99999999999999999999 x"),
        "command-correct-negative-overflow": lambda s: command_probe(s, "correct -99999999999999999999 x"),
        "command-without-user-id": lambda s: command_probe(s, "status", drop=("user_id",)),
        "command-user-id-too-long": lambda s: command_probe(s, "declare sextortion-minor x", user="x" * 300),
        "command-channel-id-too-long": lambda s: command_probe(s, "declare sextortion-minor x", channel="C" * 300),
        "command-without-channel-id": lambda s: command_probe(s, "note hello", drop=("channel_id",)),
        "command-page-legal-3000-chars": lambda s: command_probe(s, "page legal " + "r" * 3000),
        "command-page-legal-45000-chars": lambda s: command_probe(s, "page legal " + "r" * 45000),
        "command-note-3000-chars": lambda s: command_probe(s, "note " + "n" * 3000),
        "command-note-45000-chars": lambda s: command_probe(s, "note " + "n" * 45000),
        "command-note-45000-mentions": lambda s: command_probe(s, "note " + ("<!channel> " * 4500)),
        "event-reaction-pushpin-missing-message": lambda s: event_probe(s, {
            "type": "reaction_added", "user": LEAD, "reaction": "pushpin",
            "item": {"type": "message", "channel": inc(s), "ts": "1700000000.999999"}, "event_ts": now()}),
        "event-reaction-pushpin-without-user": lambda s: event_probe(s, {
            "type": "reaction_added", "reaction": "pushpin",
            "item": {"type": "message", "channel": inc(s), "ts": s.targets.human_ts[inc(s)]}, "event_ts": now()}),
        "event-reaction-pushpin-without-item-ts": lambda s: event_probe(s, {
            "type": "reaction_added", "user": LEAD, "reaction": "pushpin",
            "item": {"type": "message", "channel": inc(s)}, "event_ts": now()}),
        "event-reaction-item-an-integer": lambda s: event_probe(s, {
            "type": "reaction_added", "user": LEAD, "reaction": "eyes", "item": 10 ** 30, "event_ts": now()}),
        "event-reaction-item-a-list": lambda s: event_probe(s, {
            "type": "reaction_added", "user": LEAD, "reaction": "pushpin", "item": [inc(s)], "event_ts": now()}),
        "event-member-joined-without-user": lambda s: event_probe(s, {
            "type": "member_joined_channel", "channel": inc(s), "channel_type": "G", "event_ts": now()}),
        "event-member-left-without-channel": lambda s: event_probe(s, {
            "type": "member_left_channel", "user": SPEC, "channel_type": "G", "event_ts": now()}),
        "event-app-mention-without-channel": lambda s: event_probe(s, {
            "type": "app_mention", "user": LEAD, "text": "<@U0BOT>", "ts": now(), "event_ts": now()}),
        "event-member-joined-channel-an-integer": lambda s: event_probe(s, {
            "type": "member_joined_channel", "user": SPEC, "channel": 5, "event_ts": now()}),
        # Found by the exhaustive wrong-type sweep (every key of every listener's payload).
        "button-action-id-a-list": lambda s: button_probe(s, "step_done", None, actions=[
            {"action_id": [], "block_id": "b", "type": "button", "value": "1:confirm", "action_ts": "1.2"}]),
        "button-action-id-an-object": lambda s: button_probe(s, "step_skip", None, actions=[
            {"action_id": {}, "block_id": "b", "type": "button", "value": "1:confirm", "action_ts": "1.2"}]),
        "button-home-tab-container-a-string": lambda s: home_probe(s, "home_declare", container="x"),
        "button-repeat-declare-response-url-not-a-url": lambda s: button_probe(
            s, "repeat_declare", json.dumps({"playbook": "viral-spread", "summary": "Known case: clip 4411 resharing",
                                             "severity": None, "channel": OPS}), response_url=10 ** 30),
        "button-repeat-join-without-response-url": lambda s: button_probe(
            s, "repeat_join", json.dumps({"playbook": "grooming", "summary": "Adult contacting a minor, case 77",
                                          "incident": s.targets.incidents[1]}), response_url=None),
        "view-declare-refused-blocks-an-integer": lambda s: view_probe(
            s, "declare", values={"playbook": _select("csam-report"), "summary": _text_input("")},
            view_keys={"blocks": 10 ** 30}),
        "view-step-fields-refused-blocks-true": lambda s: view_probe(
            s, "step_fields", json.dumps({"incident": s.targets.incidents[0], "step": "nope"}),
            view_keys={"blocks": True}),
        "view-step-skip-refused-block-id-a-list": lambda s: view_probe(
            s, "step_skip", json.dumps({"incident": s.targets.incidents[0], "step": "nope"}),
            view_keys={"blocks": [{"type": "input", "block_id": [], "element": {}}]}),
    }
