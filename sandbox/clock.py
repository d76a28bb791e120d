"""Clocks for the sandbox: the real one and a manual one tests can move."""

from __future__ import annotations

import threading
import time


class SystemClock:
    """Wall-clock time in seconds since the epoch (the interface of slack_sdk's Clock)."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to; starts at the current wall-clock time."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, when: float) -> None:
        with self._lock:
            self._now = float(when)
