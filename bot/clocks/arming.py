"""Arming and cancelling the playbook clocks. A timer is a row; see timers.py for firing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core import Core
from ..db.models import Incident, StepState, TimelineEvent, Timer
from ..durations import format_duration
from ..render import slack_date
from ..timeline.store import append
from .now import utcnow


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


def first_completion(session: Session, incident_id: int, step_id: str, *, done_only: bool = False) -> datetime | None:
    """When `step_id` was first done (or skipped): a clock counts from that moment, however
    often the step was reopened and completed since. An Undo must not buy time, and the
    earliest start is the safe one: a reminder comes early, never after the period ran out."""
    kinds = ("step_done",) if done_only else ("step_done", "step_skipped")
    rows = session.execute(select(TimelineEvent.at, TimelineEvent.data).where(
        TimelineEvent.incident_id == incident_id, TimelineEvent.kind.in_(kinds)).order_by(TimelineEvent.seq))
    return next((at for at, data in rows if (data or {}).get("step") == step_id), None)


def _armed(session: Session, incident_id: int, start: str) -> set[tuple[str | None, int | None]]:
    """(step, timer index) of the clocks from `start` that are running or have fired."""
    rows = session.scalars(select(Timer).where(
        Timer.incident_id == incident_id, Timer.state.in_(("pending", "fired")), Timer.kind.in_(("remind", "page"))))
    return {(t.step_id, t.spec.get("index")) for t in rows if t.spec.get("from") == start}


def _clock_start(session: Session, incident_id: int, start: str, timer, fallback: datetime) -> datetime | None:
    """When a step's clock from `start` began; None when it has not (a lasting clock needs the
    step done: a report never filed starts no preservation year)."""
    if timer.outlives_close:
        return first_completion(session, incident_id, start, done_only=True)
    return first_completion(session, incident_id, start) or fallback


def arm_clock(core: Core, session: Session, incident: Incident, start: str) -> None:
    """Arm every timer whose clock starts now: `declared`, or the completion of step `start`.

    A skipped step starts the clocks that run from it (a skipped confirmation must not silence
    the report's deadline), except lasting ones (`outlives_close`). A step completed again after
    an Undo restarts nothing: clocks still running keep their due time, those that fired do not
    fire twice, and any missing count from the first completion."""
    playbook = core.playbook(incident.playbook_id)
    states = _step_states(session, incident.id)
    now = utcnow()
    running: set[tuple[str | None, int | None]] = set()
    if start != "declared":
        session.flush()
        running = _armed(session, incident.id, start)
    for step in playbook.steps:
        state = states.get(step.id)
        if state is not None and state.state in ("done", "skipped"):
            continue
        for index, timer in enumerate(step.timers):
            if timer.from_ != start or (step.id, index) in running:
                continue
            base = now if start == "declared" else _clock_start(session, incident.id, start, timer, now)
            if base is not None:
                _arm_step_timer(core, session, incident, step, index, base)
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
            base = _clock_start(session, incident.id, timer.from_, timer, origin.done_at)
            if base is None:
                continue
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


def outlives_close(timer: Timer, playbook=None) -> bool:
    """A clock the playbook keeps past `close` (`outlives_close: true`): the 1-year preservation.
    A timer armed before the flag existed has no copy of it: its playbook step says."""
    if "outlives_close" in timer.spec or playbook is None:
        return timer.spec.get("outlives_close") is True
    step = next((s for s in playbook.steps if s.id == timer.step_id), None)
    index = timer.spec.get("index")
    if step is None or not isinstance(index, int) or not 0 <= index < len(step.timers):
        return False
    return step.timers[index].outlives_close


def cancel_timers(
    session: Session, incident_id: int, *, reason: str, actor: str | None = None,
    step_id: str | None = None, kinds: tuple[str, ...] | None = None, keep_lasting: bool = False,
    playbook=None,
) -> int:
    query = select(Timer).where(Timer.incident_id == incident_id, Timer.state == "pending")
    if step_id is not None:
        query = query.where(Timer.step_id == step_id)
    if kinds is not None:
        query = query.where(Timer.kind.in_(kinds))
    count = 0
    for timer in session.scalars(query):
        if keep_lasting and outlives_close(timer, playbook):
            append(session, incident_id, "timer_kept", f"Legal clock kept running: {reason}", actor=actor,
                   data={"timer": timer.id, "kind": timer.kind, "step": timer.step_id,
                         "due_at": timer.due_at.isoformat(), "basis": timer.spec.get("basis")})
            continue
        timer.state = "cancelled"
        append(session, incident_id, "timer_cancelled", f"Clock cancelled: {reason}", actor=actor,
               data={"timer": timer.id, "kind": timer.kind, "step": timer.step_id, "reason": reason})
        count += 1
    return count
