"""Serving the bot with waitress (a production WSGI server), in the foreground or a thread."""

from __future__ import annotations

import sys
import threading

from waitress.channel import HTTPChannel
from waitress.server import create_server

from runtime.app import Safeguard


class BotServer:
    def __init__(self, bot: Safeguard, host: str = "127.0.0.1", port: int = 0, threads: int = 32) -> None:
        self.bot = bot
        self.server = create_server(bot.web, host=host, port=port, threads=threads,
                                    channel_timeout=30, connection_limit=1000, ident="safeguard")
        self._thread: threading.Thread | None = None
        self._stopping = False

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
        _favour_short_requests()
        self.bot.start()
        self._thread = threading.Thread(target=self._run, name="safeguard-http", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.server.run()
        except (OSError, ValueError):
            if not self._stopping:  # closing the sockets under the loop is how it stops
                raise

    def serve_forever(self) -> None:
        _favour_short_requests()
        self.bot.start()
        self._run()

    def stop(self) -> None:
        self._stopping = True
        if self._thread is not None and self._thread.is_alive():
            # close every socket from inside the loop's own thread, so the loop ends cleanly
            try:
                self.server.trigger.pull_trigger(lambda: _close_all(self.server))
            except OSError:  # the wake-up pipe is gone already (seen once in tests): close from here
                _close_all(self.server)
            self._thread.join(timeout=5)
        else:
            self.server.close()
        self.server.task_dispatcher.shutdown(timeout=1)
        self.bot.stop()


def _favour_short_requests() -> None:
    """Hand the GIL over every millisecond instead of every 5: an ack waiting behind threads that
    write declarations or call Slack gets its turn sooner (bench/ack.py: p99 of a burst of 20)."""
    sys.setswitchinterval(0.001)


def _close_all(server) -> None:
    for channel in list(server._map.values()):
        try:
            if isinstance(channel, HTTPChannel):
                channel.handle_close()
            else:
                channel.close()
        except OSError:
            pass
