"""APScheduler decides when the dispatcher looks for due work; the database decides what is due.

Two jobs: a sweep every `sweep_seconds` (work armed by other replicas, leases of dead workers,
retries), and one `wake` job re-aimed at the earliest pending timer so local timers fire on time.
misfire_grace_time=None everywhere: a late run is still a run (APScheduler's default of 1 s
would silently skip a job that was due while the process was busy or down).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from .clock import utcnow
from .dispatcher import Dispatcher


class Clockwork:
    def __init__(self, dispatcher: Dispatcher, *, sweep_seconds: float = 1.0) -> None:
        self.dispatcher = dispatcher
        self.sweep_seconds = sweep_seconds
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(4)},
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )
        self._lock = threading.Lock()
        self._next_wake: datetime | None = None

    def start(self) -> None:
        from .housekeeping import purge

        self.scheduler.start()
        self.scheduler.add_job(self.dispatcher.tick, "interval", seconds=self.sweep_seconds, id="sweep",
                               next_run_time=utcnow(), replace_existing=True)
        self.scheduler.add_job(purge, "interval", hours=1, args=[self.dispatcher.db], id="housekeeping",
                               replace_existing=True)

    def wake_at(self, due: datetime | None) -> None:
        """Make sure the dispatcher looks at `due` (no-op if an earlier wake-up is planned)."""
        if due is None or not self.scheduler.running:
            return
        now = utcnow()
        with self._lock:
            if self._next_wake is not None and now < self._next_wake <= due:
                return
            self._next_wake = due
            self.scheduler.add_job(self._wake, "date", run_date=max(due, now), id="wake", replace_existing=True)

    def _wake(self) -> None:
        with self._lock:
            self._next_wake = None
        self.dispatcher.tick()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
