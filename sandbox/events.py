"""Events the sandbox sends to the bot on its own, with Slack's retries."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .models import Delivery

if TYPE_CHECKING:
    from .server import Sandbox


class EventSender:
    """Delivers Events API callbacks in background threads, retrying failures like Slack.

    Slack retries an event it got no 2xx for within 3 s (up to 3 times, with
    `X-Slack-Retry-Num`/`X-Slack-Retry-Reason`), unless the app answered `X-Slack-No-Retry: 1`.
    Slack waits 1 min and 5 min between retries; the sandbox waits `retry_delays`.
    """

    def __init__(self, sandbox: Sandbox, retry_delays: tuple[float, ...] = (0.5, 2.0, 5.0)) -> None:
        self.sandbox = sandbox
        self.retry_delays = tuple(retry_delays)
        self.stopping = threading.Event()
        self._idle = threading.Condition()
        self._pending = 0

    def reserve(self) -> None:
        """Count a batch that will be handed to deliver_async(reserved=True) soon."""
        with self._idle:
            self._pending += 1

    def deliver_async(self, events: list[dict[str, Any]], reserved: bool = False) -> threading.Thread:
        """Send `events` one after another in a new daemon thread."""
        if not reserved:
            self.reserve()
        thread = threading.Thread(
            target=self._deliver_all, args=(list(events),), name="sandbox-events", daemon=True
        )
        thread.start()
        return thread

    def _deliver_all(self, events: list[dict[str, Any]]) -> None:
        try:
            for event in events:
                if self.stopping.is_set():
                    return
                self.deliver(event)
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def deliver(self, event: dict[str, Any]) -> Delivery:
        """Send one event now (blocking), with retries; the outcome is kept in `deliveries`."""
        driver = self.sandbox.driver
        ws = self.sandbox.state
        delivery = Delivery(kind=event.get("type", ""), body={"event": event})
        with ws.lock:
            ws.deliveries.append(delivery)
        event_id = None
        reason = "http_timeout"
        for attempt in range(len(self.retry_delays) + 1):
            if attempt and self.stopping.wait(self.retry_delays[attempt - 1]):
                return delivery
            if not driver.reachable:
                delivery.attempts.append({"status": None, "error": "no bot url or socket"})
                return delivery
            result = driver.event(
                event, retry_num=attempt or None, retry_reason=reason, event_id=event_id,
                timeout=driver.ack_deadline,
            )
            if isinstance(result.payload, dict):
                event_id = result.payload.get("event_id")
                delivery.body = result.payload
            delivery.attempts.append(
                {"status": result.status, "elapsed": result.elapsed, "error": result.error}
            )
            if result.ok:
                return delivery
            if result.headers.get("x-slack-no-retry") == "1":
                return delivery
            if result.timed_out:
                reason = "http_timeout"
            elif result.status is None:
                reason = "connection_failed"
            else:
                reason = "http_error"
        return delivery

    def wait(self, timeout: float = 5.0) -> bool:
        """Wait until every event batch announced so far was delivered (or gave up)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def stop(self) -> None:
        self.stopping.set()
