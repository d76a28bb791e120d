"""Stopping waitress while requests run: answers finish, and nothing writes to a closed pipe.

A CI run once printed `OSError: [Errno 9] Bad file descriptor` from waitress's `pull_trigger`
when `safeguard demo` stopped: a request thread finished after the wake-up pipe was closed."""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import httpx
import pytest

from runtime.serving import BackgroundServer


def slow_app(seconds: float, started: threading.Event | None = None):
    def app(environ, start_response):
        if started is not None:
            started.set()
        time.sleep(float(environ.get("QUERY_STRING") or seconds))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]

    return app


@pytest.fixture
def waitress_errors(caplog):
    caplog.set_level(logging.WARNING, logger="waitress")
    yield lambda: [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_a_running_request_finishes_and_is_answered(waitress_errors):
    started = threading.Event()
    server = BackgroundServer(slow_app(0.3, started), threads=4, grace=2).start()
    answers: list[int] = []
    caller = threading.Thread(target=lambda: answers.append(httpx.get(server.url, timeout=5).status_code))
    caller.start()
    assert started.wait(5)
    server.stop()
    caller.join(5)
    assert answers == [200]
    assert not waitress_errors()
    with pytest.raises(httpx.ConnectError):  # and it no longer listens
        httpx.get(server.url, timeout=1)


def test_a_request_that_outlives_the_grace_writes_to_no_closed_pipe(waitress_errors):
    # the requests finish after the sockets and the pipe were closed
    _stop_while_called(BackgroundServer(slow_app(0.6), threads=4, grace=0.1), 4, after=0.2, linger=0.8)
    assert not waitress_errors(), [r.getMessage() for r in waitress_errors()]


def test_stop_soon_ends_a_foreground_loop(waitress_errors):
    server = BackgroundServer(slow_app(0), threads=2).bind()
    loop = threading.Thread(target=server.serve_forever)
    loop.start()
    assert httpx.get(server.url, timeout=5).text == "done"
    server.stop_soon()  # what a SIGTERM handler does
    loop.join(5)
    assert not loop.is_alive() and not waitress_errors()


def test_many_stops_under_load(waitress_errors):
    for _ in range(10):
        _stop_while_called(BackgroundServer(slow_app(0.02), threads=4, grace=0.05), 6, after=0.03)
    time.sleep(0.1)
    assert not waitress_errors(), [r.getMessage() for r in waitress_errors()]


def _stop_while_called(server: BackgroundServer, callers: int, *, after: float, linger: float = 0.0) -> None:
    """Start the server, `callers` requests at once, stop it `after` s, wait `linger` s more."""
    server.start()
    threads = [threading.Thread(target=_call, args=(server.url,)) for _ in range(callers)]
    for thread in threads:
        thread.start()
    time.sleep(after)
    server.stop()
    time.sleep(linger)
    for thread in threads:
        thread.join(5)


def _call(url: str) -> None:
    with contextlib.suppress(httpx.HTTPError):  # cut off by the stop: allowed; a server traceback is not
        httpx.get(url, timeout=3)


def test_a_request_thread_that_pulls_the_closed_pipe_is_harmless():
    """The exact race: a request thread sees its channel still connected, the loop closes the
    pipe, then the thread pulls it. Pulling a closed pipe must be a no-op, not EBADF."""
    server = BackgroundServer(slow_app(0), threads=2).start()
    waitress_server = server._server
    server.stop()
    waitress_server.pull_trigger()  # what `HTTPChannel.service` does last
