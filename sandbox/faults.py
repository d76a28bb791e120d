"""Fault injection for the sandbox Web API: latency, rate limiting, server errors, lost answers."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

KINDS = ("latency", "ratelimit", "error", "lost")


@dataclass
class Fault:
    """One rule. `method` None (or "*") matches every method, "chat.*" a family.

    `count` is how many calls it still applies to (None: until cleared); `until`, when set, the
    time (the sandbox's clock) from which it applies no more: an outage of a given length.
    """

    kind: str
    method: str | None = None
    count: int | None = 1
    ms: int = 0
    retry_after: int = 1
    status: int = 500
    until: float | None = None

    def spent(self, now: float) -> bool:
        return (self.count is not None and self.count <= 0) or (self.until is not None and now >= self.until)

    def matches(self, method: str, now: float) -> bool:
        if self.spent(now):
            return False
        if self.method in (None, "", "*"):
            return True
        if self.method.endswith(".*"):
            return method.startswith(self.method[:-1])
        return self.method == method


class Faults:
    """The fault rules of one sandbox. Thread-safe.

    `now` is the clock that time windows (`seconds=`) run on: the workspace's, so a test on a
    ManualClock ends an outage by moving the clock.
    """

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self.now = now
        self.rules: list[Fault] = []

    def add(self, fault: Fault | dict[str, Any]) -> Fault:
        if isinstance(fault, dict):
            fault = fault_from_dict(fault, self.now())
        if fault.kind not in KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}")
        if fault.kind in ("error", "lost") and not 500 <= fault.status <= 599:
            raise ValueError("error faults answer a 5xx status")
        with self._lock:
            self.rules.append(fault)
        return fault

    def latency(self, ms: int, method: str | None = None, count: int | None = None) -> Fault:
        """Delay calls by `ms` milliseconds (all calls until cleared, unless `count`)."""
        return self.add(Fault("latency", method, count, ms=ms))

    def rate_limit(self, method: str | None = None, count: int | None = 1, retry_after: int = 1) -> Fault:
        """The next `count` calls answer HTTP 429 with `Retry-After: retry_after`."""
        return self.add(Fault("ratelimit", method, count, retry_after=int(retry_after)))

    def server_error(self, method: str | None = None, count: int | None = 1, status: int = 500) -> Fault:
        """The next `count` calls answer HTTP `status` (500/503) without changing anything."""
        return self.add(Fault("error", method, count, status=status))

    def outage(self, method: str | None = None, *, seconds: float | None = None,
               count: int | None = None, status: int = 503) -> Fault:
        """Slack is down for `method` (say "auth.test"): every call for `seconds` (or the next
        `count` calls, or until cleared) answers `status`: 5xx, or 429 with `Retry-After` the
        window's length (1 s without one)."""
        until = None if seconds is None else self.now() + seconds
        if status == 429:
            retry_after = max(1, math.ceil(seconds)) if seconds is not None else 1
            return self.add(Fault("ratelimit", method, count, retry_after=retry_after, until=until))
        return self.add(Fault("error", method, count, status=status, until=until))

    def lost_answer(self, method: str | None = None, count: int = 1, status: int = 500) -> Fault:
        """The next `count` calls take effect, but their answer is lost: HTTP `status`, as when
        Slack acted and the connection broke before the app heard back."""
        return self.add(Fault("lost", method, count, status=status))

    def clear(self, method: str | None = None) -> None:
        with self._lock:
            self.rules = [] if method is None else [f for f in self.rules if f.method != method]

    def take(self, method: str) -> tuple[int, Fault | None]:
        """For one call of `method`: (latency in ms, the failure to answer or None)."""
        delay = 0
        failure = None
        now = self.now()
        with self._lock:
            for fault in self.rules:
                if not fault.matches(method, now):
                    continue
                if fault.kind == "latency":
                    delay = max(delay, fault.ms)
                elif failure is None:
                    failure = fault
                else:
                    continue
                if fault.count is not None:
                    fault.count -= 1
            self.rules = [f for f in self.rules if not f.spent(now)]
        return delay, failure

    def to_list(self) -> list[dict[str, Any]]:
        now = self.now()
        with self._lock:
            return [asdict(f) for f in self.rules if not f.spent(now)]


def fault_from_dict(spec: dict[str, Any], now: float | None = None) -> Fault:
    """A rule from the JSON of `POST /_sandbox/faults`.

    `{"kind": "latency", "ms": 200, "method": "chat.postMessage"}`,
    `{"kind": "ratelimit", "count": 2, "retry_after": 1}`, `{"kind": "error", "status": 503}`,
    `{"kind": "error", "status": 503, "method": "auth.test", "seconds": 30}` (every call for
    30 s: with `seconds`, `count` defaults to unlimited).
    """
    kind = str(spec.get("kind", "")).replace("rate_limit", "ratelimit").replace("server_error", "error")
    seconds = spec.get("seconds")
    default_count = None if kind == "latency" or seconds is not None else 1
    count = spec.get("count", default_count)
    base = time.time() if now is None else now
    return Fault(
        kind=kind,
        method=spec.get("method"),
        count=None if count is None else int(count),
        ms=int(spec.get("ms", 0)),
        retry_after=int(spec.get("retry_after", 1)),
        status=int(spec.get("status", 500)),
        until=None if seconds is None else base + float(seconds),
    )
