"""Serve a WSGI app with waitress in a background thread, and stop it cleanly."""

from __future__ import annotations

import threading
from typing import Any

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import create_server


class BackgroundServer:
    """waitress `create_server(app, host, port, threads)` run in a daemon thread.

    `stop()` lets running requests finish, then the serving thread itself closes every
    socket (closing waitress's wake-up pipe from another thread races with it).
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, threads: int = 16,
                 **adjustments: Any) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.threads = threads
        self.adjustments = adjustments
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopping = False

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        """`http://host:port/`"""
        return f"http://{self.host}:{self.port}/"

    def start(self) -> BackgroundServer:
        if self._server is not None:
            return self
        self._server = create_server(
            self.app, host=self.host, port=self.port, threads=self.threads, **self.adjustments
        )
        self.port = self._server.effective_port
        self._stopping = False
        self._thread = threading.Thread(
            target=self._serve, args=(self._server,), name=f"http-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def _serve(self, server: Any) -> None:
        while True:
            wasyncore.loop(
                timeout=server.adj.asyncore_loop_timeout,
                map=server._map,
                use_poll=server.adj.asyncore_use_poll,
                count=1,
            )
            with self._lock:
                if self._stopping:
                    _close_all(server)
                    return

    def stop(self, timeout: float = 2.0) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.task_dispatcher.shutdown(timeout=timeout)
        with self._lock:  # the pipe is only closed under this lock: pulling it here is safe
            self._stopping = True
            server.pull_trigger()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

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
