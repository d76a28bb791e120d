"""APScheduler decides when the dispatcher looks for due work; the database decides what is due.

Two jobs: a sweep every `sweep_seconds` (work armed by other replicas, leases of dead workers,
retries), and one `wake` job re-aimed at the earliest pending timer so local timers fire on time.
misfire_grace_time=None everywhere: a late run is still a run (APScheduler's default of 1 s
would silently skip a job that was due while the process was busy or down).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from .dispatcher import Dispatcher
from .now import utcnow

GRANULE = timedelta(milliseconds=50)
# A wake-up aimed while the previous one is still running (its pass fires timers and re-aims
# the wake job) must not be skipped, as APScheduler does at max_instances=1 ("maximum number of
# running instances reached"): the next look would then wait for the sweep. Concurrent ticks
# fold into one more pass of the running one (Dispatcher.tick), so overlapping runs are cheap.
OVERLAP = 3


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
        self._last_wake: datetime | None = None

    def start(self) -> None:
        from ..housekeeping import purge

        self.scheduler.start()
        self.scheduler.add_job(self.dispatcher.tick, "interval", seconds=self.sweep_seconds, id="sweep",
                               next_run_time=utcnow(), replace_existing=True, max_instances=OVERLAP)
        self.scheduler.add_job(purge, "interval", hours=1, args=[self.dispatcher.db], id="housekeeping",
                               replace_existing=True)

    def every(self, seconds: float, job, job_id: str) -> None:
        """A periodic job of the core (membership checks …); a late run still runs, once."""
        self.scheduler.add_job(job, "interval", seconds=seconds, id=job_id, replace_existing=True)

    def wake_at(self, due: datetime | None) -> None:
        """Make sure the dispatcher looks at `due` (no-op if an earlier wake-up is planned).

        Wake-ups are at least GRANULE apart: when timers come due every few milliseconds, one
        pass fires all those of the last GRANULE instead of one pass (and its queries) each."""
        if due is None or not self.scheduler.running:
            return
        now = utcnow()
        with self._lock:
            if self._next_wake is not None and now < self._next_wake <= due:
                return
            run_at = max(due, now, self._last_wake + GRANULE) if self._last_wake else max(due, now)
            self._next_wake = run_at
            self.scheduler.add_job(self._wake, "date", run_date=run_at, id="wake", replace_existing=True,
                                   max_instances=OVERLAP)

    def _wake(self) -> None:
        with self._lock:
            self._next_wake = None
            self._last_wake = utcnow()
        self.dispatcher.tick()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
