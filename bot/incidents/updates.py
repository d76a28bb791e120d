"""Status updates (`/incident update`, the checklist's Update): a formatted post everyone in the
incident channel sees, a `status_update` timeline event, the status-update clock reset to the
chosen next-update time, and a content-free line in the announcement channel.

Who may post one is the `note` permission (members and leads by default): whoever knows where
things stand at 3 a.m. should be able to say so, and an update is a note everyone sees.
"""

from __future__ import annotations

from datetime import timedelta

from ..clocks.arming import add_timer, cancel_timers
from ..clocks.now import utcnow
from ..clocks.outbox import to_incident_channel
from ..core import Core
from ..db.models import Incident
from ..durations import format_duration, parse_duration
from ..errors import InvalidInput, NotFound
from ..outcomes import Outcome
from ..policy import mutation
from ..timeline.store import append, lock_incident
from . import ref
from .announce import announce
from .checklist import request_refresh

MAX_TEXT = 2000
NEXT_CHOICES = ("15m", "30m", "1h", "2h", "4h")


def cadence(core: Core, severity: str) -> timedelta | None:
    return core.config.status_updates.get(severity)


def next_interval(core: Core, severity: str, choice: str | None) -> timedelta:
    """The chosen next-update time; none chosen: the severity's cadence (else 1h)."""
    choice = (choice or "").strip().lower()
    if not choice:
        return cadence(core, severity) or timedelta(hours=1)
    try:
        every = parse_duration(choice)
    except ValueError:
        every = None
    if every is None or not timedelta(minutes=5) <= every <= timedelta(days=1):
        raise InvalidInput(f"Next update: pick one of {', '.join(NEXT_CHOICES)} (or a duration from 5m to 24h).",
                           {"next_update": "Pick a time for the next update."})
    return every


@mutation("note")
def post_status_update(core: Core, incident_id: int, actor: str, state: str, next_steps: str = "",
                       next_update: str | None = None) -> Outcome:
    state, next_steps = (state or "").strip(), (next_steps or "").strip()
    if not state:
        raise InvalidInput("Say where things stand (current state).", {"state": "Say where things stand."})
    if len(state) > MAX_TEXT or len(next_steps) > MAX_TEXT:
        field = "state" if len(state) > MAX_TEXT else "next"
        raise InvalidInput(f"Keep each part of an update under {MAX_TEXT} characters.", {field: "Too long."})
    with core.db.tx() as session:
        lock_incident(session, incident_id)
        incident = session.get(Incident, incident_id)
        if incident is None:
            raise NotFound(f"There is no incident {ref(incident_id)}.")
        if incident.status != "open":
            raise InvalidInput(f"{ref(incident_id)} is {incident.status}: no more status updates.")
        every = next_interval(core, incident.severity, next_update)
        now = utcnow()
        due = now + every
        event = append(session, incident_id, "status_update",
                       f"Status update: {state}" + (f" — Next: {next_steps}" if next_steps else ""),
                       actor=actor, data={"state": state, "next_steps": next_steps, "next_update_at": due.isoformat(),
                                          "every": format_duration(every)})
        # The update resets the status-update clock: the next reminder is due at the time promised.
        cancel_timers(session, incident_id, reason="status update posted", actor=actor, kinds=("status",))
        add_timer(core, session, incident, kind="status", due=due, spec={"every": format_duration(every)},
                  text=f"Next status update due in {format_duration(every)}")
        to_incident_channel(session, incident, core.render.text(
            "slack/status_update.txt.j2", ref=ref(incident_id), actor=actor, state=state, next_steps=next_steps,
            due=due, severity=incident.severity, seq=event.seq))
        announce(core, session, incident, "updated")
        request_refresh(session, incident)
    core.dispatcher.kick()
    return Outcome("status_update_posted", incident_id, {"due": due, "every": format_duration(every)})
