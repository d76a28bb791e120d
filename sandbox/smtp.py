"""A local SMTP server (aiosmtpd) that keeps what it receives: e-mail pages in the demo and tests."""

from __future__ import annotations

import threading
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller


class _FreePortController(Controller):
    """aiosmtpd's Controller on port 0: learn the real port before its start-up self-test."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpStandIn:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, on_message=None) -> None:
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self._on_message = on_message
        self._controller = _FreePortController(self, hostname=host, port=port)

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        message = message_from_bytes(envelope.content, policy=policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self._lock:
            self.messages.append(message)
        if self._on_message is not None:
            self._on_message(message)
        return "250 OK"

    def rcpts(self) -> list[str]:
        """Every recipient of every message, in order."""
        with self._lock:
            return [r.strip() for m in self.messages for r in m["X-Envelope-To"].split(",")]

    @property
    def url(self) -> str:
        return f"smtp://{self._controller.hostname}:{self._controller.port}"

    def start(self) -> SmtpStandIn:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpStandIn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
