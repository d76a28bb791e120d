"""Serve a WSGI app with waitress, in the foreground or a background thread, and stop it cleanly.

waitress has no `stop()`: its loop runs until its sockets are closed. Two races make a naive
stop print tracebacks: closing the sockets from another thread races the loop's `select()`,
and a request thread that finishes after the wake-up pipe was closed writes to a closed
descriptor (`OSError: [Errno 9] Bad file descriptor` in `pull_trigger`). So here the loop
itself closes everything, after running requests had their time, and the pipe is pulled and
closed under one lock: once it is closed, pulling it does nothing.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import create_server


class BackgroundServer:
    """waitress `create_server(app, host, port, threads, **adjustments)`, served by `start()` in a
    daemon thread or by `serve_forever()` in the calling one; `stop()` from any thread (or
    `stop_soon()` from a signal handler) lets running requests finish, then closes every socket."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, threads: int = 16,
                 grace: float = 2.0, **adjustments: Any) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.threads = threads
        self.grace = grace
        self.adjustments = adjustments
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._closed = False

    @property
    def url(self) -> str:
        """`http://host:port/`"""
        return f"http://{self.host}:{self.port}/"

    def bind(self) -> BackgroundServer:
        """Open the listening socket (so the port is known before serving starts)."""
        if self._server is None:
            server = create_server(self.app, host=self.host, port=self.port, threads=self.threads,
                                   **self.adjustments)
            self.port = server.effective_port
            self._guard_trigger(server)
            self._stopping.clear()
            self._closed = False
            self._server = server
        return self

    def start(self) -> BackgroundServer:
        if self._thread is not None:
            return self
        self.bind()
        self._thread = threading.Thread(target=self.serve_forever, name=f"http-{self.port}", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        server = self.bind()._server
        try:
            while not self._stopping.is_set():
                wasyncore.loop(timeout=server.adj.asyncore_loop_timeout, map=server._map,
                               use_poll=server.adj.asyncore_use_poll, count=1)
        finally:
            self._drain(server)
            with self._lock:
                self._closed = True
                _close_all(server)

    def _drain(self, server: Any) -> None:
        """No new connections; running requests get up to `grace` seconds to finish and send
        their answers (the loop keeps running meanwhile: it is what writes them out)."""
        server.accepting = False
        dispatcher = server.task_dispatcher
        deadline = time.monotonic() + self.grace
        while time.monotonic() < deadline and (dispatcher.active_count or dispatcher.queue or any(
                isinstance(c, HTTPChannel) and c.total_outbufs_len for c in list(server._map.values()))):
            wasyncore.loop(timeout=0.05, map=server._map, use_poll=server.adj.asyncore_use_poll, count=1)
        dispatcher.shutdown(timeout=0.5)

    def stop_soon(self) -> None:
        """Ask the loop to end (safe in a signal handler: it only sets a flag and wakes the loop)."""
        self._stopping.set()
        if self._server is not None:
            self._server.trigger.pull_trigger()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self.stop_soon()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.grace + 5)
        self._server = self._thread = None

    def _guard_trigger(self, server: Any) -> None:
        trigger = server.trigger
        pull = trigger.pull_trigger

        def pull_unless_closed(thunk: Any = None) -> None:
            with self._lock:
                if not self._closed:
                    pull(thunk)

        trigger.pull_trigger = pull_unless_closed

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _close_all(server: Any) -> None:
    for channel in list(server._map.values()):
        try:
            if isinstance(channel, HTTPChannel):
                channel.handle_close()
            else:
                channel.close()
        except OSError:
            pass
