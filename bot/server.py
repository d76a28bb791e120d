"""Serving the bot with waitress (a production WSGI server), in the foreground or a thread."""

from __future__ import annotations

import threading

from waitress.server import create_server

from .app import Safeguard


class BotServer:
    def __init__(self, bot: Safeguard, host: str = "127.0.0.1", port: int = 0, threads: int = 32) -> None:
        self.bot = bot
        self.server = create_server(bot.web, host=host, port=port, threads=threads,
                                    channel_timeout=30, connection_limit=1000, ident="safeguard")
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.effective_port

    @property
    def url(self) -> str:
        return f"http://{self.server.effective_host}:{self.port}"

    @property
    def events_url(self) -> str:
        return self.url + "/slack/events"

    def start(self) -> BotServer:
        self.bot.start()
        self._thread = threading.Thread(target=self.server.run, name="safeguard-http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.bot.start()
        self.server.run()

    def stop(self) -> None:
        self.server.close()
        if self._thread:
            self._thread.join(timeout=5)
        self.bot.stop()
