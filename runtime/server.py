"""Serving the bot with waitress (a production WSGI server), in the foreground or a thread."""

from __future__ import annotations

import sys

from runtime.app import Safeguard
from runtime.serving import BackgroundServer


class BotServer:
    def __init__(self, bot: Safeguard, host: str = "127.0.0.1", port: int = 0, threads: int = 32) -> None:
        self.bot = bot
        self.http = BackgroundServer(bot.web, host=host, port=port, threads=threads, channel_timeout=30,
                                     connection_limit=1000, ident="safeguard").bind()

    @property
    def port(self) -> int:
        return self.http.port

    @property
    def url(self) -> str:
        return self.http.url.rstrip("/")

    @property
    def events_url(self) -> str:
        return self.url + "/slack/events"

    def start(self, *, bot: bool = True) -> BotServer:
        """Serve in a thread; `bot=False` serves HTTP without starting the bot's scheduler and
        workers (tests that drive the clocks by hand)."""
        _favour_short_requests()
        if bot:
            self.bot.start()
        self.http.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until `stop_soon()` (a signal handler) or `stop()`."""
        _favour_short_requests()
        self.bot.start()
        self.http.serve_forever()

    def stop_soon(self) -> None:
        self.http.stop_soon()

    def stop(self) -> None:
        self.http.stop()
        self.bot.stop()


def _favour_short_requests() -> None:
    """Hand the GIL over every millisecond instead of every 5: an ack waiting behind threads that
    write declarations or call Slack gets its turn sooner (bench/ack.py: p99 of a burst of 20)."""
    sys.setswitchinterval(0.001)
