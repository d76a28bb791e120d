"""Arming and cancelling the playbook clocks. A timer is a row; see timers.py for firing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .clock import utcnow
from .core import Core
from .db.models import Incident, StepState, TimelineEvent, Timer
from .durations import format_duration
from .render import slack_date
from .timeline.store import append


def _step_states(session: Session, incident_id: int) -> dict[str, StepState]:
    rows = session.scalars(select(StepState).where(StepState.incident_id == incident_id))
    return {row.step_id: row for row in rows}


def add_timer(
    core: Core,
    session: Session,
    incident: Incident,
    *,
    kind: str,
    due: datetime,
    step_id: str | None = None,
    target: str | None = None,
    page_id: int | None = None,
    spec: dict | None = None,
    text: str,
) -> Timer:
    timer = Timer(
        incident_id=incident.id, step_id=step_id, kind=kind, target=target, page_id=page_id,
        spec=spec or {}, due_at=due, state="pending", armed_at=utcnow(),
    )
    session.add(timer)
    session.flush()
    append(session, incident.id, "timer_armed", f"{text}, due {slack_date(due)}",
           data={"timer": timer.id, "kind": kind, "step": step_id, "target": target,
                 "due_at": due.isoformat(), **(spec or {})})
    session.info.setdefault("armed", []).append(due)
    return timer


def _arm_step_timer(core: Core, session: Session, incident: Incident, step, index: int, base: datetime) -> None:
    timer = step.timers[index]
    kind, target = ("remind", timer.remind) if timer.remind else ("page", timer.page)
    what = "remind the owner" if target == "owner" else (
        f"remind {core.role_label(target)}" if kind == "remind" else f"page {core.role_label(target)}")
    add_timer(
        core, session, incident, kind=kind, due=base + timer.after, step_id=step.id, target=target,
        spec={"index": index, "after": format_duration(timer.after), "from": timer.from_,
              "basis": timer.basis or "", **({"outlives_close": True} if timer.outlives_close else {})},
        text=f"Clock for “{step.title}”: {what} {format_duration(timer.after)} after {timer.from_}",
    )


def _first_completion(session: Session, incident_id: int, step_id: str) -> datetime | None:
    """When `step_id` was first done or skipped: a legal clock counts from that moment, however
    often the step was reopened and completed since (an Undo must not buy time)."""
    rows = session.execute(select(TimelineEvent.at, TimelineEvent.data).where(
        TimelineEvent.incident_id == incident_id, TimelineEvent.kind.in_(("step_done", "step_skipped")))
        .order_by(TimelineEvent.seq))
    return next((at for at, data in rows if (data or {}).get("step") == step_id), None)


def _armed(session: Session, incident: Incident, start: str) -> set[tuple[str | None, int | None]]:
    """(step, timer index) of the deadline clocks from `start` that are running or have fired.

    Lasting clocks from `start` are restarted instead: the preservation year runs from the
    report that stands, not from one that was undone."""
    armed = set()
    for timer in session.scalars(select(Timer).where(
            Timer.incident_id == incident.id, Timer.state.in_(("pending", "fired")), Timer.kind.in_(("remind", "page")))):
        if timer.spec.get("from") != start:
            continue
        if not outlives_close(timer):
            armed.add((timer.step_id, timer.spec.get("index")))
        elif timer.state == "pending":
            timer.state = "cancelled"
            append(session, incident.id, "timer_cancelled", f"Clock restarted: “{start}” completed again",
                   data={"timer": timer.id, "kind": timer.kind, "step": timer.step_id, "reason": "restarted"})
    return armed


def arm_clock(core: Core, session: Session, incident: Incident, start: str, *, skipped: bool = False) -> None:
    """Arm every timer whose clock starts now: `declared`, or the completion of step `start`.

    A step completed again after an Undo does not restart its deadline clocks: those still
    running keep their due time, those that fired do not fire twice, and any missing are counted
    from the first completion (an Undo must not buy time). Lasting clocks (`outlives_close`)
    restart from now: they measure a period from what stands. A skipped step starts the clocks that run from it (a skipped
    confirmation must not silence the report's deadline), except lasting ones
    (`outlives_close`): a report never filed starts no year-long preservation clock."""
    playbook = core.playbook(incident.playbook_id)
    states = _step_states(session, incident.id)
    now = utcnow()
    first, running = now, set()
    if start != "declared":
        session.flush()
        first = _first_completion(session, incident.id, start) or now
        running = _armed(session, incident, start)
    for step in playbook.steps:
        state = states.get(step.id)
        if state is not None and state.state in ("done", "skipped"):
            continue
        for index, timer in enumerate(step.timers):
            if timer.from_ != start or (skipped and timer.outlives_close) or (step.id, index) in running:
                continue
            _arm_step_timer(core, session, incident, step, index, now if timer.outlives_close else first)
    if start == "declared":
        arm_status_update(core, session, incident, now)


def arm_step(core: Core, session: Session, incident: Incident, step) -> None:
    """A reopened step gets its clocks back, counted from when each clock originally started
    (so a reopened overdue step is overdue at once, not given a fresh deadline)."""
    states = _step_states(session, incident.id)
    for index, timer in enumerate(step.timers):
        if timer.from_ == "declared":
            base = incident.declared_at
        else:
            origin = states.get(timer.from_)
            if origin is None or origin.state not in ("done", "skipped") or origin.done_at is None:
                continue  # that clock has not started; it will when its step completes
            if origin.state == "skipped" and timer.outlives_close:
                continue
            base = origin.done_at if timer.outlives_close else (
                _first_completion(session, incident.id, timer.from_) or origin.done_at)
        _arm_step_timer(core, session, incident, step, index, base)


def arm_status_update(core: Core, session: Session, incident: Incident, now: datetime,
                      not_before: datetime | None = None) -> None:
    """The next status-update reminder, `every` after `now` (and not before `not_before`)."""
    every = core.config.status_updates.get(incident.severity)
    if every is None or incident.status != "open":
        return
    due = now + every
    if not_before is not None and due < not_before:
        due = not_before  # one is owed already: remind at once
    add_timer(core, session, incident, kind="status", due=due,
              spec={"every": format_duration(every)},
              text=f"Status-update reminder every {format_duration(every)} ({incident.severity})")


def outlives_close(timer: Timer) -> bool:
    """A clock the playbook keeps past `close` (`outlives_close: true`): the 1-year preservation."""
    return timer.spec.get("outlives_close") is True


def cancel_timers(
    session: Session, incident_id: int, *, reason: str, actor: str | None = None,
    step_id: str | None = None, kinds: tuple[str, ...] | None = None, keep_lasting: bool = False,
) -> int:
    query = select(Timer).where(Timer.incident_id == incident_id, Timer.state == "pending")
    if step_id is not None:
        query = query.where(Timer.step_id == step_id)
    if kinds is not None:
        query = query.where(Timer.kind.in_(kinds))
    count = 0
    for timer in session.scalars(query):
        if keep_lasting and outlives_close(timer):
            append(session, incident_id, "timer_kept", f"Legal clock kept running: {reason}", actor=actor,
                   data={"timer": timer.id, "kind": timer.kind, "step": timer.step_id,
                         "due_at": timer.due_at.isoformat(), "basis": timer.spec.get("basis")})
            continue
        timer.state = "cancelled"
        append(session, incident_id, "timer_cancelled", f"Clock cancelled: {reason}", actor=actor,
               data={"timer": timer.id, "kind": timer.kind, "step": timer.step_id, "reason": reason})
        count += 1
    return count
