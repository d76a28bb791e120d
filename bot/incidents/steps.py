"""Working the checklist: done (with field values), skip (with a reason), undo."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.errors import SlackError

from ..clocks.arming import arm_clock, arm_step, cancel_timers
from ..clocks.now import utcnow
from ..core import Core
from ..db.models import Incident, StepState
from ..errors import Forbidden, InvalidInput, NotFound
from ..field_types import FIELD_TYPES
from ..outcomes import Outcome
from ..paging.service import withdraw_pages
from ..policy import authorize, mutation
from ..suggest import no_such
from ..timeline.store import append, lock_incident
from ..tokens import is_api_actor
from . import ref
from .checklist import request_refresh

MAX_REASON = 500



def step_definition(core: Core, incident_id: int, step_id: str):
    playbook = core.playbook(core.playbook_id_of(incident_id))
    for step in playbook.steps:
        if step.id == step_id:
            return step
    raise NotFound(no_such("step", step_id, [s.id for s in playbook.steps], prefix=ref(incident_id)))


def missing_fields(core: Core, incident_id: int, step_id: str, values: dict[str, str]) -> list[str]:
    step = step_definition(core, incident_id, step_id)
    return [f.id for f in step.fields if f.required and not (values.get(f.id) or "").strip()]


def validate_values(step, values: dict[str, Any]) -> dict[str, str]:
    """Check values against the step's fields; all problems at once, keyed by field id."""
    fields = {f.id: f for f in step.fields}
    errors: dict[str, str] = {}
    clean: dict[str, str] = {}
    for key in values:
        if key not in fields:
            known = ", ".join(fields) or "none"
            errors[key] = f"`{key}` is not a field of this step (fields: {known})."
    for field in step.fields:
        value = str(values.get(field.id) or "").strip()
        if not value:
            if field.required:
                errors[field.id] = f"{field.label} is required."
            continue
        try:
            value = FIELD_TYPES[field.type].clean(field, value)
        except ValueError as err:
            errors[field.id] = str(err)
        if len(value) > 500:
            errors[field.id] = "Keep it under 500 characters."
        clean[field.id] = value
    if errors:
        summary = " ".join(errors.values())
        raise InvalidInput(summary, errors)
    return clean


def check_given(core: Core, incident_id: int, step_id: str, values: dict[str, Any]) -> None:
    """The values typed with `/incident done` before the modal asks for the rest: a wrong one
    is said now rather than dropped without a word."""
    step = step_definition(core, incident_id, step_id)
    try:
        validate_values(step, values)
    except InvalidInput as err:
        wrong = {k: v for k, v in err.fields.items() if k in values}
        if wrong:
            raise InvalidInput(" ".join(wrong.values()), wrong) from None


def _check_people(core: Core, step, values: dict[str, str]) -> None:
    """A user field names someone who exists in the workspace (when Slack can be asked)."""
    if core.gateway is None:
        return
    errors = {}
    for field in step.fields:
        if field.type == "user" and values.get(field.id):
            try:
                if core.gateway.person(values[field.id]) is None:
                    errors[field.id] = f"{field.label}: there is no such user in this workspace."
            except SlackError:
                return
    if errors:
        raise InvalidInput(" ".join(errors.values()), errors)


def _states(session: Session, incident_id: int) -> dict[str, StepState]:
    return {s.step_id: s for s in session.scalars(select(StepState).where(StepState.incident_id == incident_id))}


def _open_incident(session: Session, incident_id: int) -> Incident:
    lock_incident(session, incident_id)
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"There is no incident {ref(incident_id)}.")
    # A resolved incident still has paperwork (the report id, the hold) and its clocks still
    # run for it; only a closed one is finished.
    if incident.status == "closed":
        raise InvalidInput(f"{ref(incident_id)} is closed; its steps can no longer change.")
    return incident


def recompute(core: Core, session: Session, incident: Incident, actor: str | None) -> None:
    """Steps whose `after:` steps are all done or skipped are active; the others wait."""
    playbook = core.playbook(incident.playbook_id)
    states = _states(session, incident.id)
    finished = {sid for sid, s in states.items() if s.state in ("done", "skipped")}
    for step in playbook.steps:
        state = states[step.id]
        if state.state in ("done", "skipped"):
            continue
        wanted = "active" if set(step.after) <= finished else "waiting"
        if wanted != state.state:
            state.state = wanted
            append(session, incident.id, "step_activated" if wanted == "active" else "step_waiting",
                   f"“{step.title}” is {'now active' if wanted == 'active' else 'waiting again'}",
                   actor=actor, data={"step": step.id})


def _finish(core: Core, incident_id: int, step_id: str, user: str, *, state: str,
            values: dict[str, str] | None = None, reason: str | None = None,
            also: Callable[[Session], None] | None = None) -> Outcome:
    step = step_definition(core, incident_id, step_id)
    with core.db.tx() as session:
        incident = _open_incident(session, incident_id)
        row = _states(session, incident_id)[step_id]
        if row.state in ("done", "skipped"):
            raise InvalidInput(f"“{step.title}” is already {row.state}. `/incident undo {step_id}` reopens it.")
        if row.state == "waiting" and state == "done":
            playbook = core.playbook(incident.playbook_id)
            states = _states(session, incident_id)
            waiting = [playbook.step(a).title for a in step.after if states[a].state not in ("done", "skipped")]
            raise InvalidInput(f"“{step.title}” waits on: {', '.join(waiting)}. Finish those first "
                               f"(or skip them with a reason).")
        row.state, row.done_by, row.done_at = state, user, utcnow()
        if state == "done":
            row.values = values or {}
            row.skipped_reason = None
            # The text names the fields; their values (classifications among them) are in `data`.
            shown = f" ({', '.join(values)} recorded)" if values else ""
            append(session, incident_id, "step_done", f"“{step.title}” done{shown}", actor=user,
                   data={"step": step_id, "values": values or {}})
            if also is not None:
                also(session)
        else:
            row.skipped_reason = reason
            append(session, incident_id, "step_skipped", f"“{step.title}” skipped: {reason}", actor=user,
                   data={"step": step_id, "reason": reason})
        cancel_timers(session, incident_id, reason=f"“{step.title}” {state}", actor=user, step_id=step_id)
        # A page because this step was overdue has nothing left to ask for.
        withdraw_pages(core, session, incident_id, user, step_id=step_id, why=f"“{step.title}” was {state}")
        recompute(core, session, incident, user)
        # A step's completion (or skip) starts the clocks that run `from:` it.
        arm_clock(core, session, incident, step_id)
        request_refresh(session, incident)
    core.dispatcher.kick()
    return Outcome(f"step_{state}", incident_id, {"step": step_id, "title": step.title})


@mutation("step", step="step_id")
def complete(core: Core, incident_id: int, step_id: str, actor: str, values: dict[str, Any],
             viewed: dict[str, Any] | None = None) -> Outcome:
    """Check the step off with its values. On a step that asks whether a person viewed the
    content, `viewed` ({viewed, viewed_items, viewed_kind}) also logs the actor's own viewing, in
    the same transaction and as `/incident viewed` does: the custody event on the timeline, the
    duration in the private ledger only (never a step value)."""
    from ..wellbeing import log_viewing, prepare_viewing  # wellbeing builds on the incident domain

    step = step_definition(core, incident_id, step_id)
    clean = validate_values(step, values)
    _check_people(core, step, clean)
    also = None
    if viewed:
        viewing = prepare_viewing(core, step, clean, viewed, actor)
        authorize(core, incident_id, actor, "viewed")

        def also(session: Session) -> None:
            log_viewing(core, session, incident_id, actor, viewing)
    outcome = _finish(core, incident_id, step_id, actor, state="done", values=clean, also=also)
    if viewed:
        outcome.details["viewed"] = True
    return outcome


@mutation("step", step="step_id")
def skip(core: Core, incident_id: int, step_id: str, actor: str, reason: str) -> Outcome:
    if not step_id:
        raise InvalidInput("Usage: `/incident skip STEP REASON…`.")
    step = step_definition(core, incident_id, step_id)
    # Skipping stops the step's clocks: a legal one (the CyberTipline report) is for a person to
    # stop, accountable in Slack, never a case tool's token (a bug there would stop it unseen).
    if is_api_actor(actor) and any(t.basis.lower().startswith("law") for t in step.timers):
        raise Forbidden(f"“{step.title}” has a legal clock: only a person in Slack can skip it; an API token "
                        "cannot. Nothing was changed.")
    reason = " ".join((reason or "").split())
    if not reason:
        raise InvalidInput(f"Say why: `/incident skip {step_id} REASON…`.", {"reason": "A reason is required."})
    return _finish(core, incident_id, step_id, actor, state="skipped", reason=reason[:MAX_REASON])


@mutation("step", step="step_id")
def reopen(core: Core, incident_id: int, step_id: str, actor: str, reason: str) -> Outcome:
    """Undo: the step is open again. A reason is required (it reopens work others relied on);
    its clocks keep counting from the first completion (see clocks.arming)."""
    if not step_id:
        raise InvalidInput("Usage: `/incident undo STEP REASON…`.")
    step = step_definition(core, incident_id, step_id)
    reason = " ".join((reason or "").split())
    if not reason:
        raise InvalidInput(f"Say why: `/incident undo {step_id} REASON…` (it reopens work others relied on).",
                           {"reason": "A reason is required."})
    user = actor
    with core.db.tx() as session:
        incident = _open_incident(session, incident_id)
        row = _states(session, incident_id)[step_id]
        if row.state not in ("done", "skipped"):
            raise InvalidInput(f"“{step.title}” is not done or skipped.")
        previous = row.state
        row.state, row.done_by, row.done_at, row.skipped_reason = "waiting", None, None, None
        append(session, incident_id, "step_reopened", f"“{step.title}” reopened (was {previous}): {reason[:MAX_REASON]}",
               actor=user, data={"step": step_id, "was": previous, "reason": reason[:MAX_REASON]})
        recompute(core, session, incident, user)
        arm_step(core, session, incident, step)
        request_refresh(session, incident)
    core.dispatcher.kick()
    return Outcome("step_reopened", incident_id, {"step": step_id, "title": step.title})


def waiting_on(core: Core, incident_id: int, step_id: str) -> list[str]:
    """The titles of the steps that come after `step_id`: they wait again when it is reopened."""
    with core.db.read() as session:
        playbook = core.playbook(session.get(Incident, incident_id).playbook_id)
    return [step.title for step in playbook.steps_after(step_id)]


def prefill(core: Core, incident_id: int, step_id: str, given: dict[str, Any]) -> dict[str, Any]:
    """The values a step's form opens with: those recorded before (a redo after an Undo), then
    the ones given now."""
    step = step_definition(core, incident_id, step_id)
    private = {f.id for f in step.fields if f.private}  # never shown in Slack, not even in a form
    with core.db.read() as session:
        row = _states(session, incident_id).get(step_id)
        recorded = {k: v for k, v in (row.values or {}).items() if k not in private} if row is not None else {}
    return {**recorded, **given}
