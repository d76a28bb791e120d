"""Fault injection for the sandbox Web API: latency, rate limiting, server errors, lost answers."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

KINDS = ("latency", "ratelimit", "error", "lost")


@dataclass
class Fault:
    """One rule. `method` None (or "*") matches every method, "chat.*" a family.

    `count` is how many calls it still applies to (None: until cleared).
    """

    kind: str
    method: str | None = None
    count: int | None = 1
    ms: int = 0
    retry_after: int = 1
    status: int = 500

    def matches(self, method: str) -> bool:
        if self.count is not None and self.count <= 0:
            return False
        if self.method in (None, "", "*"):
            return True
        if self.method.endswith(".*"):
            return method.startswith(self.method[:-1])
        return self.method == method


class Faults:
    """The fault rules of one sandbox. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rules: list[Fault] = []

    def add(self, fault: Fault | dict[str, Any]) -> Fault:
        if isinstance(fault, dict):
            fault = fault_from_dict(fault)
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

    def rate_limit(self, method: str | None = None, count: int = 1, retry_after: int = 1) -> Fault:
        """The next `count` calls answer HTTP 429 with `Retry-After: retry_after`."""
        return self.add(Fault("ratelimit", method, count, retry_after=int(retry_after)))

    def server_error(self, method: str | None = None, count: int = 1, status: int = 500) -> Fault:
        """The next `count` calls answer HTTP `status` (500/503) without changing anything."""
        return self.add(Fault("error", method, count, status=status))

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
        with self._lock:
            for fault in self.rules:
                if not fault.matches(method):
                    continue
                if fault.kind == "latency":
                    delay = max(delay, fault.ms)
                elif failure is None:
                    failure = fault
                else:
                    continue
                if fault.count is not None:
                    fault.count -= 1
            self.rules = [f for f in self.rules if f.count is None or f.count > 0]
        return delay, failure

    def to_list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self.rules]


def fault_from_dict(spec: dict[str, Any]) -> Fault:
    """A rule from the JSON of `POST /_sandbox/faults`.

    `{"kind": "latency", "ms": 200, "method": "chat.postMessage"}`,
    `{"kind": "ratelimit", "count": 2, "retry_after": 1}`, `{"kind": "error", "status": 503}`.
    """
    kind = str(spec.get("kind", "")).replace("rate_limit", "ratelimit").replace("server_error", "error")
    default_count = None if kind == "latency" else 1
    count = spec.get("count", default_count)
    return Fault(
        kind=kind,
        method=spec.get("method"),
        count=None if count is None else int(count),
        ms=int(spec.get("ms", 0)),
        retry_after=int(spec.get("retry_after", 1)),
        status=int(spec.get("status", 500)),
    )
