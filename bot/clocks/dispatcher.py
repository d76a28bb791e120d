"""Runs due timers and outbox tasks.

Claims are single conditional UPDATEs (plus SKIP LOCKED on PostgreSQL), so any number of bot
processes sharing a database run each timer and each task once. A task whose worker died is
taken over when its lease runs out. APScheduler only decides *when* to look; the rows decide
*what* is due, so nothing is lost when a process stops.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

from ..db.engine import Database
from ..db.models import Task
from ..errors import RateLimited
from ..metrics import NO_METRICS, OUTBOX_LAG
from .now import utcnow

log = logging.getLogger(__name__)

TaskHandler = Callable[[Task], None]


class Retry(Exception):
    """Raised by a task handler to be tried again later (after `delay` when given). `counts=False`
    for waiting on something that will come (the incident's channel, a quiet minute), which must
    not use up the task's attempts: a channel made late under Slack's limits is not a failure."""

    def __init__(self, message: str, delay: timedelta | None = None, *, counts: bool = True) -> None:
        super().__init__(message)
        self.delay = delay
        self.counts = counts


class GiveUp(Exception):
    """Raised by a task handler when retrying cannot help."""


@dataclass
class TaskKind:
    handler: TaskHandler
    max_attempts: int | None = None  # None: retry for ever (with the backoff cap)
    on_dead: Callable[[Task, str], None] | None = None
    first_retry: timedelta = timedelta(seconds=2)
    max_retry: timedelta = timedelta(minutes=5)


def node_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{id(object()):x}"


class Dispatcher:
    def __init__(
        self,
        db: Database,
        *,
        workers: int = 32,
        lease: timedelta = timedelta(minutes=2),
        batch: int = 200,
        node: str | None = None,
        first_retry: timedelta = timedelta(seconds=2),
    ) -> None:
        self.db = db
        self.first_retry = first_retry
        self.kinds: dict[str, TaskKind] = {}
        self.timer_firer: Callable[[datetime], int] | None = None
        self.lease = lease
        self.batch = batch
        self.node = node or node_name()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="safeguard-task")
        self._capacity = workers + max(workers // 2, 1)  # tasks claimed at once: running or queued
        self._full = False
        self._done_cond = threading.Condition()  # group commit of finished tasks
        self._done_ids: list[int] = []
        self._done_records: list[tuple[int, Callable[[Any], Any]]] = []
        self._flushing = False
        self._flush_next = 0
        self._flushed = 0
        self._lock = threading.Lock()
        self._running = False
        self._again = False
        self._inflight = 0
        self._idle = threading.Condition(self._lock)
        self.inline = False  # tests: run tasks in the calling thread
        self.metrics = NO_METRICS  # outbox lag (set by the application factory)
        # Called in the worker thread before each task (runtime: the Slack pacer's patience).
        self.before_task: Callable[[], None] | None = None
        self.deferred = 0  # tasks put back because Slack's rate limit had no room for them
        self.wake_at: Callable[[datetime], None] | None = None  # look again then (the scheduler)
        # Timers that failed to fire in this process: id -> (failures, not before); see timers.py.
        self.timer_failures: dict[int, tuple[int, datetime]] = {}

    def register(self, kind: str, handler: TaskHandler, **options: Any) -> None:
        options.setdefault("first_retry", self.first_retry)
        self.kinds[kind] = TaskKind(handler, **options)

    # -- when to look ------------------------------------------------------------------
    def kick(self) -> None:
        """Look for due work now, without blocking the caller."""
        if self.inline:
            self.tick()
            return
        self._submit(self.tick)

    def _submit(self, fn, *args) -> bool:
        """Run on the pool; False once it is shut down (the rows wait for the next start, or
        for another replica: nothing is lost)."""
        try:
            self._pool.submit(fn, *args)
            return True
        except RuntimeError:
            log.info("not starting more work: the dispatcher is shutting down")
            return False

    def tick(self) -> None:
        """Fire due timers and start due tasks; concurrent calls fold into one more pass."""
        with self._lock:
            if self._running:
                self._again = True
                return
            self._running = True
        try:
            while True:
                self._again = False
                now = utcnow()
                if self.timer_firer is not None:
                    self.timer_firer(now)
                started = self._start_due_tasks(now)
                with self._lock:
                    if not self._again and started < self.batch:
                        self._running = False
                        return
        except Exception:
            log.exception("dispatcher pass failed")
            with self._lock:
                self._running = False

    # -- tasks -------------------------------------------------------------------------
    def _claim(self, now: datetime, limit: int) -> list[Task]:
        due = or_(
            (Task.state == "pending") & (Task.not_before <= now),
            (Task.state == "running") & (Task.lease_until < now),
        )
        with self.db.tx() as session:
            ids = session.scalars(
                # Pages and legal clocks first (Task.priority), then oldest due first.
                select(Task.id).where(due).order_by(Task.priority, Task.not_before).limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            if not ids:
                return []
            # One UPDATE for the batch: the rows are ours (locked above on PostgreSQL; SQLite's
            # BEGIN IMMEDIATE lets no other writer in), and `due` still guards the claim.
            session.execute(
                update(Task).where(Task.id.in_(ids), due)
                .values(state="running", owner=self.node, lease_until=now + self.lease,
                        dedup_key=None, attempts=Task.attempts + 1),
                execution_options={"synchronize_session": False},
            )
            tasks = list(session.scalars(select(Task).where(
                Task.id.in_(ids), Task.state == "running", Task.owner == self.node)))
            for task in tasks:
                session.expunge(task)
                self.metrics.observe(OUTBOX_LAG, (now - task.not_before).total_seconds(), kind=task.kind)
        return tasks

    def _start_due_tasks(self, now: datetime) -> int:
        """Claim no more tasks than there are free workers (plus a short queue): a task claimed
        but waiting in this process's queue could outlive its lease and run twice, and the other
        replicas should get the rest. A finishing task looks again when the limit was reached."""
        with self._lock:
            room = self._capacity - self._inflight
            self._full = room <= 0
        if room <= 0:
            return 0
        tasks = self._claim(now, min(self.batch, room))
        for task in tasks:
            with self._lock:
                self._inflight += 1
            if self.inline:
                self._run(task)
            elif not self._submit(self._run, task):
                with self._lock:  # shutting down: its lease runs out and a live process takes it
                    self._inflight -= 1
        return len(tasks) if len(tasks) < room else self.batch  # full: go round again

    def _run(self, task: Task) -> None:
        try:
            kind = self.kinds.get(task.kind)
            if kind is None:
                self._finish(task, "dead", f"no handler for task kind {task.kind!r}")
                return
            try:
                if self.before_task is not None:
                    self.before_task()
                record = kind.handler(task)
            except RateLimited as exc:
                self._defer(task, exc)
            except Retry as exc:
                self._retry_or_die(task, kind, str(exc), exc.delay, counts=exc.counts)
            except GiveUp as exc:
                self._die(task, kind, str(exc))
            except Exception as exc:  # a bug or an outage: retry, never drop
                log.warning("task %s (%s) failed: %s", task.id, task.kind, exc)
                self._retry_or_die(task, kind, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}", None)
            else:
                self._finish_done(task.id, record if callable(record) else None)
        finally:
            with self._lock:
                self._inflight -= 1
                self._idle.notify_all()
                look_again, self._full = self._full, False
            if look_again and not self.inline:
                self._submit(self.tick)

    def _retry_or_die(self, task: Task, kind: TaskKind, error: str, delay: timedelta | None, *,
                      counts: bool = True) -> None:
        if counts and kind.max_attempts is not None and task.attempts >= kind.max_attempts:
            self._die(task, kind, error)
            return
        if delay is None:
            delay = min(kind.first_retry * (2 ** max(task.attempts - 1, 0)), kind.max_retry)
        with self.db.tx() as session:
            session.execute(
                update(Task).where(Task.id == task.id, Task.owner == self.node)
                .values(state="pending", not_before=utcnow() + delay, lease_until=None, last_error=error[:4000],
                        attempts=Task.attempts if counts else Task.attempts - 1)
            )

    def _defer(self, task: Task, exc: RateLimited) -> None:
        """Slack has no room for this task's call now: back to the outbox until it has, without
        counting an attempt (nothing was sent; a slow Slack must not use up a page's retries),
        and without holding a worker that a page could use meanwhile."""
        with self._lock:
            self.deferred += 1
        not_before = utcnow() + timedelta(seconds=exc.retry_after)
        with self.db.tx() as session:
            session.execute(
                update(Task).where(Task.id == task.id, Task.owner == self.node)
                .values(state="pending", not_before=not_before, lease_until=None, attempts=Task.attempts - 1)
            )
        if self.wake_at is not None:  # on time, not at the next sweep
            self.wake_at(not_before)

    def _die(self, task: Task, kind: TaskKind, error: str) -> None:
        self._finish(task, "dead", error)
        if kind.on_dead is not None:
            try:
                kind.on_dead(task, error)
            except Exception:
                log.exception("on_dead of task %s failed", task.id)

    def _finish(self, task: Task, state: str, error: str | None) -> None:
        with self.db.tx() as session:
            session.execute(
                update(Task).where(Task.id == task.id, Task.owner == self.node)
                .values(state=state, done_at=utcnow(), lease_until=None, last_error=error and error[:4000])
            )

    def _finish_done(self, task_id: int, record: Callable[[Any], None] | None = None) -> None:
        """Mark a task done, sharing one transaction with the tasks that finish meanwhile
        (group commit): a worker waits until its task is recorded, as with a transaction of its
        own, but many finished tasks cost one commit (SQLite's single writer, PostgreSQL's WAL
        flush). `record(session)`, a handler's answer, writes what the task did (a reminder's
        `reminder_sent`) in that transaction; its `incident_id` says which incident it locks."""
        with self._done_cond:
            self._done_ids.append(task_id)
            if record is not None:
                self._done_records.append((task_id, record))
            flush = self._flush_next  # the first flush that starts after this append
            while True:
                if self._flushed > flush:
                    return
                if not self._flushing:
                    break
                self._done_cond.wait()
            self._flushing, ids, self._done_ids = True, self._done_ids, []
            records, self._done_records = self._done_records, []
            number, self._flush_next = self._flush_next, self._flush_next + 1
        try:
            with self.db.tx() as session:
                ids = self._record(session, ids, records)
                session.execute(
                    update(Task).where(Task.id.in_(ids), Task.owner == self.node)
                    .values(state="done", done_at=utcnow(), lease_until=None, last_error=None),
                    execution_options={"synchronize_session": False},
                )
        finally:  # on an error the tasks stay running and are taken over when their lease ends
            with self._done_cond:
                self._flushing, self._flushed = False, number + 1
                self._done_cond.notify_all()

    def _record(self, session, ids: list[int], records: list[tuple[int, Callable]]) -> list[int]:
        """Run the tasks' records, in the order of the incident each locks (`incident_id`), so two
        replicas' group commits never wait for each other in a cycle. A record that fails leaves
        its task running: its lease runs out and a retry finds what it posted (post_once)."""
        failed = set()
        for task_id, record in sorted(records, key=lambda r: getattr(r[1], "incident_id", 0) or 0):
            try:
                with session.begin_nested():
                    record(session)
            except Exception:
                log.exception("recording what task %s did failed; it is retried when its lease ends", task_id)
                failed.add(task_id)
        return [i for i in ids if i not in failed]

    # -- lifecycle ---------------------------------------------------------------------
    def drain(self, timeout: float = 10.0) -> bool:
        """Tests and shutdown: wait until no task is running in this process."""
        with self._lock:
            return self._idle.wait_for(lambda: self._inflight == 0 and not self._running, timeout)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
