"""The application factory: builds one complete bot (nothing is created at import time), so a
process — or a test — can run as many independent bots as it likes."""

from __future__ import annotations

import logging
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from flask import Flask
from slack_bolt import App
from slack_bolt.authorization import AuthorizeResult
from sqlalchemy import event

from bot import home, idempotency, intake
from bot.check import check
from bot.clocks.dispatcher import Dispatcher
from bot.clocks.firing import fire_due
from bot.clocks.scheduler import Clockwork
from bot.config import load_config
from bot.core import Core
from bot.db.engine import Database
from bot.housekeeping import purge_wellbeing
from bot.incidents.people import reconcile
from bot.metrics import NO_METRICS
from bot.paging import service as paging_service
from bot.paging.base import PagerConfigError
from bot.paging.registry import build_backends
from bot.playbooks import load_playbooks
from bot.render import Renderer
from bot.settings import Settings
from bot.tasks import register_tasks
from bot.timeline import service as timeline_service
from handlers.context import reject_malformed
from runtime.metrics import PrometheusMetrics
from runtime.slack_gateway import SlackGateway, make_client
from runtime.slack_pacing import Pacer

log = logging.getLogger(__name__)


class _NoBodies(logging.Filter):
    """Bolt logs a refused request's body (signature failures at INFO, unhandled requests as a
    warning): it may hold what a responder typed, so only the first words are kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for marker in ("body:", "Unhandled request (", "(body:"):
            if marker in message:
                kept = message[: message.index(marker) + len(marker)].removesuffix("(").removesuffix("body:")
                record.msg, record.args = kept.rstrip() + " (body not logged)", ()
                break
        return True


def one_workspace(token: str, gateway):
    """Bolt's authorisation for the bot's one workspace. Bolt's own calls auth.test on the first
    request and, when Slack is down then, tells the user to reinstall the app and drops the
    request; here the token is known and the identity is learnt at start-up, with retries."""

    def authorize(enterprise_id=None, team_id=None, **_):
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token=token,
                               bot_user_id=gateway.known_bot_user_id)

    return authorize


def bolt_logger() -> logging.Logger:
    logger = logging.getLogger("safeguard.bolt")
    if not any(isinstance(f, _NoBodies) for f in logger.filters):
        logger.addFilter(_NoBodies())
    return logger


class StartupError(Exception):
    """The bot cannot start; the message says why and what to fix."""


@dataclass
class Safeguard:
    settings: Settings
    core: Core
    bolt: App
    web: Flask
    clockwork: Clockwork
    listeners: dict[str, list[str]] = field(default_factory=dict)
    _started: bool = field(default=False)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Safeguard:
        if not self._started:
            self._stopping.clear()
            threading.Thread(target=self.core.gateway.learn_identity, args=(self._stopping,),
                             name="safeguard-identity", daemon=True).start()
            self.clockwork.start()
            self.core.dispatcher.kick()
            self._started = True
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.clockwork.shutdown()
        self.core.dispatcher.shutdown()
        self.core.db.dispose()
        self._started = False


def load_org(settings: Settings):
    """Config and playbooks, validated; any problem stops the start with every message."""
    problems = check(settings.config_path, settings.playbooks_dir)
    if problems:
        raise StartupError("Invalid configuration:\n" + "\n".join(str(p) for p in problems))
    config = load_config(settings.config_path)
    return config, load_playbooks(settings.playbooks_dir, config)


def build_core(settings: Settings, *, migrate: bool | None = None, env: dict[str, str] | None = None,
               slack: bool = True) -> Core:
    """The core without the web side: what `serve` runs, and what the CLI reads timelines with."""
    import os

    env = dict(os.environ if env is None else env)
    config, playbooks = load_org(settings)
    if slack and not settings.slack_bot_token:
        raise StartupError("SLACK_BOT_TOKEN is not set.")
    try:  # pagers first: a missing routing key or SMTP URL stops the start before anything else
        backends = build_backends(config.pagers, env) if slack else {}
    except PagerConfigError as err:
        raise StartupError(f"{settings.config_path}: {err}") from None
    db = Database(settings.database_url, pool_size=settings.db_pool_size)
    if migrate if migrate is not None else db.is_sqlite:
        db.upgrade()
    gateway = None
    metrics = NO_METRICS
    dispatcher = Dispatcher(db, workers=settings.task_workers, first_retry=timedelta(seconds=settings.task_first_retry))
    if slack:
        pacer = Pacer(patience=settings.slack_listener_patience, pace=settings.slack_pacing)  # one per process: every thread shares it
        gateway = SlackGateway(make_client(settings.slack_bot_token, settings.slack_api_url,
                                           backoff=settings.slack_retry_backoff, pacer=pacer))
        # One registry per bot; the core, the gateway and the dispatcher report into it.
        metrics = PrometheusMetrics(db)
        gateway.observe = metrics.slack_call
        dispatcher.metrics = metrics
        # An outbox worker waits little for Slack: its task comes back later instead.
        dispatcher.before_task = lambda: gateway.pacer.set_patience(settings.slack_task_patience)
    return Core(settings=settings, db=db, config=config, playbooks=playbooks,
                render=Renderer(settings.templates_dir), dispatcher=dispatcher,
                gateway=gateway, backends=backends, metrics=metrics)


def create_bot(settings: Settings, *, migrate: bool | None = None, env: dict[str, str] | None = None) -> Safeguard:
    from handlers import register
    from runtime.web import create_web

    if not settings.slack_signing_secret and not settings.slack_app_token:
        raise StartupError("SLACK_SIGNING_SECRET is not set (or set SLACK_APP_TOKEN for Socket Mode).")
    core = build_core(settings, migrate=migrate, env=env)
    db, dispatcher = core.db, core.dispatcher
    clockwork = Clockwork(dispatcher, sweep_seconds=settings.sweep_seconds)
    core.wake = clockwork.wake_at
    dispatcher.wake_at = clockwork.wake_at
    dispatcher.timer_firer = lambda now: fire_due(core, now)

    @event.listens_for(db._write, "after_commit")
    def _wake_for_armed_timers(session) -> None:
        armed = session.info.pop("armed", None)
        if armed:
            clockwork.wake_at(min(armed))

    @event.listens_for(db._write, "after_rollback")
    def _forget(session) -> None:
        session.info.pop("armed", None)

    clockwork.every(settings.members_sync_seconds, lambda: reconcile(core), "members")
    # Exposure figures are kept for wellbeing.retention, then deleted (hourly, like housekeeping).
    clockwork.every(3600, lambda: purge_wellbeing(db, core.config.wellbeing.retention), "wellbeing-retention")
    clockwork.every(3600, lambda: idempotency.purge(db), "api-idempotency")  # keys are kept 24 h
    register_tasks(core)
    intake.register_tasks(core)
    paging_service.register_tasks(core)
    timeline_service.register_tasks(core)
    home.register_tasks(core)

    # Socket Mode needs no signing secret; a random one then refuses every HTTP request to
    # /slack/events, so nobody can post unsigned commands to the bot's port.
    signing_secret = settings.slack_signing_secret or secrets.token_hex(32)
    bolt = App(
        signing_secret=signing_secret,
        logger=bolt_logger(),
        authorize=one_workspace(settings.slack_bot_token, core.gateway),
        before_authorize=reject_malformed,
        client=core.gateway.client,
        token_verification_enabled=False,
        process_before_response=False,
        listener_executor=ThreadPoolExecutor(max_workers=settings.listener_workers,
                                             thread_name_prefix="safeguard-listener"),
    )
    listeners = register(bolt, core)
    web = create_web(core, bolt, clockwork, signing_secret)
    return Safeguard(settings=settings, core=core, bolt=bolt, web=web, clockwork=clockwork, listeners=listeners)
