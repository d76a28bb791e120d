"""Shared by the clock tests: an in-process SMTP server, the PagerDuty stand-in, a config that
points at both, and counting what the bot sent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sandbox.smtp import SmtpStandIn
from tests.support import DEMO_CONFIG

CLOCK_PLAYBOOKS = Path(__file__).parent / "playbooks_clocks"
PD_KEY = "test0routing0key0000000000000000"


@contextmanager
def smtp_server() -> Iterator[SmtpStandIn]:
    with SmtpStandIn() as box:
        yield box


def write_config(folder: Path, *, events_url: str, changes: dict[str, Any] | None = None) -> Path:
    """The demo config with PagerDuty aimed at `events_url` (and top-level `changes`)."""
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    data["pagers"]["pagerduty"]["events_url"] = events_url
    for key, value in (changes or {}).items():
        data[key] = value
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "safeguard.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def pager_env(mailbox: SmtpStandIn | None) -> dict[str, str]:
    return {"PD_ROUTING_KEY": PD_KEY, "SMTP_URL": mailbox.url if mailbox else "smtp://127.0.0.1:1"}


@dataclass
class Counts:
    """What the bot did, read from the database."""

    fired: dict[int, int] = field(default_factory=dict)  # timer id -> timer_fired events
    timers: dict[int, str] = field(default_factory=dict)  # timer id -> state


def timer_counts(database_url: str) -> Counts:
    from sqlalchemy import create_engine, select

    from bot.db.engine import normalise_url
    from bot.db.models import TimelineEvent, Timer

    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as conn:
            counts = Counts()
            for timer_id, state in conn.execute(select(Timer.id, Timer.state)):
                counts.timers[timer_id] = state
            for (data,) in conn.execute(select(TimelineEvent.data).where(TimelineEvent.kind == "timer_fired")):
                counts.fired[data["timer"]] = counts.fired.get(data["timer"], 0) + 1
            return counts
    finally:
        engine.dispose()


class BotProcess:
    """`safeguard serve` in a subprocess (PORT=0: the port is read from its first line)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        import os
        import subprocess
        import sys
        import threading

        exe = Path(sys.executable).parent / "safeguard"
        command = [str(exe)] if exe.exists() else [sys.executable, "-m", "runtime.cli"]
        self.log = log_path.open("ab")
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [*command, "serve", "--host", "127.0.0.1"], env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdout=subprocess.PIPE, stderr=self.log, text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = ""

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait_ready(self, timeout: float = 30.0) -> BotProcess:

        from tests.support import wait_serving

        def listening() -> str | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"the bot exited with {self.proc.returncode}: see {self.log.name}")
            for line in self.lines:  # "Listening on URL/slack/events" or "Socket Mode connected; … on URL"
                if line.startswith(("Listening on ", "Socket Mode connected")):
                    return line.split()[-1].removesuffix("/slack/events")
            return None

        self.url = wait_serving(listening, timeout)
        return self

    @property
    def events_url(self) -> str:
        return self.url + "/slack/events"

    def kill(self) -> None:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()

    def stop(self) -> None:
        import signal
        import subprocess

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def serve_env(sandbox, database_url: str, config: Path, playbooks: Path = CLOCK_PLAYBOOKS,
              mailbox: SmtpStandIn | None = None) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": sandbox.bot_token, "SLACK_SIGNING_SECRET": "test-signing-secret",
        "SLACK_API_URL": sandbox.api_url, "DATABASE_URL": database_url, "SAFEGUARD_CONFIG": str(config),
        "SAFEGUARD_PLAYBOOKS": str(playbooks), "PORT": "0", **pager_env(mailbox),
        "SAFEGUARD_SLACK_PACING": "on" if sandbox.limits.enabled else "off",
    }


def side_core(database_url: str, config: Path, playbooks: Path = CLOCK_PLAYBOOKS):
    """A core on the same database, without Slack: to arm timers with the bot's own functions."""
    from bot.settings import Settings
    from runtime.app import build_core

    settings = Settings(database_url=database_url, config_path=config, playbooks_dir=playbooks)
    return build_core(settings, slack=False, migrate=False)


def arm(core, incident_id: int, *, kind: str, due, target: str, step_id: str | None = "report"):
    """Arm one timer the way the clocks do (`add_timer`, with its `timer_armed` event)."""
    from bot.clocks.arming import add_timer
    from bot.db.models import Incident
    from bot.durations import format_duration
    from bot.timeline.store import lock_incident

    with core.db.tx() as session:
        lock_incident(session, incident_id)
        incident = session.get(Incident, incident_id)
        spec = {"after": format_duration(due - incident.declared_at), "from": "declared", "basis": "test"}
        return add_timer(core, session, incident, kind=kind, due=due, step_id=step_id, target=target, spec=spec,
                         text=f"Test clock: {kind} {target}").id
