"""`Sandbox`: the fake Slack workspace served over real HTTP in a background thread."""

from __future__ import annotations

import logging
from typing import Any

from runtime.serving import BackgroundServer

from .driver import Driver
from .events import EventSender
from .faults import Faults
from .models import Call, Delivery
from .ratelimits import RateLimits, enabled_by_env
from .socket_mode import SocketModeServer
from .webapp import create_app
from .workspace import Workspace, demo_workspace

log = logging.getLogger(__name__)


class Sandbox:
    """A local stand-in for Slack: Web API at `api_url`, a driver towards the bot, a page at `/`.

    >>> with Sandbox(bot_url="http://127.0.0.1:3000/slack/events") as sb:
    ...     client = WebClient(base_url=sb.api_url, token=sb.bot_token)
    """

    def __init__(
        self,
        port: int = 0,
        bot_url: str | None = None,
        signing_secret: str = "sandbox-signing-secret",
        bot_token: str = "xoxb-sandbox-token",
        app_token: str = "xapp-1-A0SAFEGRD-1-sandbox",
        workspace: Workspace | None = None,
        emit_events: bool = True,
        *,
        host: str = "127.0.0.1",
        clock: Any = None,
        event_retry_delays: tuple[float, ...] = (0.5, 2.0, 5.0),
        threads: int = 16,
        rate_limits: bool | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.signing_secret = signing_secret
        self.bot_token = bot_token
        self.app_token = app_token  # what a Socket Mode app sets in SLACK_APP_TOKEN
        self.emit_events = emit_events
        self.threads = threads
        self.state: Workspace = workspace if workspace is not None else demo_workspace()
        if clock is not None:
            self.state.clock = clock
        self.faults = Faults(now=lambda: self.state.now())  # outage windows run on the workspace clock
        # Slack's rate limits (see ratelimits.py): on unless turned off here or by SANDBOX_RATE_LIMITS.
        self.limits = RateLimits(now=lambda: self.state.now(),
                                 enabled=enabled_by_env() if rate_limits is None else rate_limits)
        self.driver = Driver(bot_url, signing_secret, self)
        self.events = EventSender(self, event_retry_delays)
        self.socket_mode = SocketModeServer(host, self.state.app_id)
        self._http: BackgroundServer | None = None

    # ------------------------------------------------------------------ properties

    @property
    def base_url(self) -> str:
        if self._http is None:
            raise RuntimeError("the sandbox is not started")
        return f"http://{self.host}:{self.port}/"

    @property
    def api_url(self) -> str:
        """What the bot puts in SLACK_API_URL (ends with `/`)."""
        return self.base_url + "api/"

    @property
    def bot_url(self) -> str | None:
        return self.driver.bot_url

    def set_bot_url(self, url: str | None) -> None:
        """Where commands, interactions and events go (`http://host:port/slack/events`)."""
        self.driver.bot_url = url

    def use_socket_mode(self, enabled: bool = True) -> None:
        """Send commands, interactions and events over Socket Mode (the app connects with
        `app_token`) instead of signed HTTP requests to the bot URL."""
        self.driver.socket_mode = enabled

    @property
    def clock(self) -> Any:
        """The workspace clock (`now()`); replace it with a ManualClock to move time in tests."""
        return self.state.clock

    @clock.setter
    def clock(self, value: Any) -> None:
        self.state.clock = value

    @property
    def calls(self) -> list[Call]:
        return self.state.calls

    @property
    def deliveries(self) -> list[Delivery]:
        return self.state.deliveries

    def calls_of(self, method: str) -> list[Call]:
        return self.state.calls_of(method)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Sandbox:
        if self._http is not None:
            return self
        self.events.stopping.clear()
        self._http = BackgroundServer(
            create_app(self), host=self.host, port=self.port, threads=self.threads, ident="sandbox"
        ).start()
        self.port = self._http.port
        log.info("sandbox listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        self.events.stop()
        self.socket_mode.stop()
        http, self._http = self._http, None
        if http is not None:
            http.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

