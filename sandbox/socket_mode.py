"""Socket Mode: the WebSocket that `apps.connections.open` hands out, as Slack runs it.

Slack sends each request as an envelope `{"envelope_id", "type", "payload",
"accepts_response_payload", "retry_attempt", "retry_reason"}` over the app's socket and waits
for `{"envelope_id", "payload"?}` back; the app may hold several connections, and Slack picks
one per envelope. A `{"type": "disconnect", "reason": "refresh_requested"}` asks the app to
open a new connection (Slack does this every few hours).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlparse

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve


class NotConnected(Exception):
    """No app holds an open Socket Mode connection."""


@dataclass
class Envelope:
    envelope_id: str
    body: dict[str, Any]
    answered: threading.Event = field(default_factory=threading.Event)
    ack: dict[str, Any] | None = None


class SocketModeServer:
    """The sandbox's Socket Mode endpoint on its own port (started by the first ticket)."""

    def __init__(self, host: str, app_id: str) -> None:
        self.host = host
        self.app_id = app_id
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._tickets: set[str] = set()
        self._open: list[ServerConnection] = []
        self._draining: set[int] = set()  # asked to reconnect: used only while nothing else is open
        self._pending: dict[str, Envelope] = {}
        self._turn = itertools.count()
        self.connections_opened = 0

    # ------------------------------------------------------------------ lifecycle

    def ticket_url(self) -> str:
        """A one-time URL for `apps.connections.open` (starts the server when needed)."""
        with self._lock:
            if self._server is None:
                self._server = serve(self._handle, self.host, 0, compression=None,
                                     process_request=self._check_ticket, ping_interval=None)
                self._thread = threading.Thread(target=self._server.serve_forever,
                                                name="sandbox-socket-mode", daemon=True)
                self._thread.start()
            port = self._server.socket.getsockname()[1]
            ticket = secrets.token_hex(16)
            self._tickets.add(ticket)
        return f"ws://{self.host}:{port}/link/?ticket={ticket}&app_id={self.app_id}"

    def stop(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            connections, self._open = list(self._open), []
        for conn in connections:
            conn.close()
        if server is not None:
            server.shutdown()
        if self._thread is not None:
            self._thread.join(5)

    @property
    def connected(self) -> int:
        """Open connections that have not been asked to reconnect."""
        with self._lock:
            return len(self._fresh())

    @property
    def open_connections(self) -> int:
        """Every open connection, those asked to reconnect included."""
        with self._lock:
            return len(self._open)

    def _fresh(self) -> list[ServerConnection]:
        return [c for c in self._open if id(c) not in self._draining]

    # ------------------------------------------------------------------ connections

    def _check_ticket(self, conn: ServerConnection, request: Any):
        query = parse_qs(urlparse(request.path).query)
        ticket = (query.get("ticket") or [""])[0]
        with self._lock:
            if ticket not in self._tickets:
                return conn.respond(HTTPStatus.UNAUTHORIZED, "invalid or used ticket\n")
            self._tickets.discard(ticket)  # a ticket opens one connection
        return None

    def _handle(self, conn: ServerConnection) -> None:
        with self._lock:
            self._open.append(conn)
            self.connections_opened += 1
            count = len(self._open)
        try:
            conn.send(json.dumps({
                "type": "hello", "num_connections": count,
                "debug_info": {"host": "sandbox", "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.app_id},
            }))
            for raw in conn:
                self._receive(raw)
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                if conn in self._open:
                    self._open.remove(conn)
                self._draining.discard(id(conn))

    def _receive(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            return
        envelope = self._pending.get(str(message.get("envelope_id", ""))) if isinstance(message, dict) else None
        if envelope is not None and not envelope.answered.is_set():
            payload = message.get("payload")
            envelope.ack = payload if isinstance(payload, dict) else None
            envelope.answered.set()

    # ------------------------------------------------------------------ sending

    def request(self, kind: str, payload: dict[str, Any], *, accepts_response_payload: bool,
                timeout: float, retry_attempt: int = 0, retry_reason: str = "") -> tuple[bool, Any, float]:
        """Send one envelope and wait for its ack: (acked, ack payload, seconds waited)."""
        envelope = Envelope(envelope_id=secrets.token_hex(18), body={})
        envelope.body = {
            "envelope_id": envelope.envelope_id, "payload": payload, "type": kind,
            "accepts_response_payload": accepts_response_payload,
        }
        if kind == "events_api":
            envelope.body.update(retry_attempt=retry_attempt, retry_reason=retry_reason)
        with self._lock:
            usable = self._fresh() or self._open  # like Slack, prefer a connection not being recycled
            if not usable:
                raise NotConnected("no Socket Mode connection is open")
            conn = usable[next(self._turn) % len(usable)]
            self._pending[envelope.envelope_id] = envelope
        started = time.monotonic()
        try:
            conn.send(json.dumps(envelope.body))
            acked = envelope.answered.wait(timeout)
        except ConnectionClosed:
            acked = False
        finally:
            self._pending.pop(envelope.envelope_id, None)
        return acked, envelope.ack, time.monotonic() - started

    def refresh(self, reason: str = "refresh_requested") -> int:
        """Ask every connected app to reconnect, as Slack does before it recycles a socket."""
        with self._lock:
            connections = list(self._open)
            self._draining.update(id(c) for c in connections)
        for conn in connections:
            with contextlib.suppress(ConnectionClosed):
                conn.send(json.dumps({"type": "disconnect", "reason": reason,
                                      "debug_info": {"host": "sandbox"}}))
        return len(connections)
