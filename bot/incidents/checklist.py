"""The pinned checklist message: rendering it, and folding bursts of changes into few updates."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from ..clocks.now import utcnow
from ..clocks.outbox import enqueue, enqueue_folded
from ..core import Core
from ..db.models import Incident, Task
from .views import IncidentView, load_view

# Slack allows about 50 chat.update calls a minute; one per incident per second keeps a busy
# incident well inside that while people still see their clicks land at once.
REFRESH_GAP = timedelta(seconds=1)


# Slack refuses a message of more than 50 blocks (for ever: `invalid_blocks`).
MAX_BLOCKS = 50
FIXED_BLOCKS = 7  # header, summary, roles, clocks, divider, the incident's actions, footer


def layout(view: IncidentView) -> dict[str, Any]:
    """How the checklist fits in 50 blocks: each step its own section (and an active step a row
    of buttons) while that fits; else the done steps fold into one section, then the waiting
    ones; a playbook longer still keeps buttons for as many active steps as fit (the others
    take `/incident done ID`, their ids are shown)."""
    open_ = view.status != "closed"
    done = sum(1 for s in view.steps if s.state in ("done", "skipped"))
    waiting = sum(1 for s in view.steps if s.state == "waiting")
    active = sum(1 for s in view.steps if s.state == "active")
    for fold_done, fold_waiting in ((False, False), (True, False), (True, True)):
        count = (FIXED_BLOCKS + (min(done, 1) if fold_done else done) + (min(waiting, 1) if fold_waiting else waiting)
                 + active * (2 if open_ else 1))
        if count <= MAX_BLOCKS:
            return {"fold_done": fold_done, "fold_waiting": fold_waiting, "buttons": active}
    return {"fold_done": True, "fold_waiting": True, "buttons": max(0, active - (count - MAX_BLOCKS))}


def render_checklist(core: Core, view: IncidentView) -> tuple[str, list[dict[str, Any]]]:
    text = core.render.text("slack/checklist.txt.j2", incident=view)
    blocks = core.render.blocks("slack/checklist.json.j2", incident=view, layout=layout(view))
    if len(blocks) > MAX_BLOCKS:  # more active steps than blocks: the footer says how to see them all
        blocks = blocks[: MAX_BLOCKS - 1] + blocks[-1:]
    return text, blocks


def request_refresh(session: Session, incident: Incident) -> None:
    """Ask for the checklist to be redrawn: at once if no redraw was planned in the last second,
    else one second after the last planned one. Requests while one is pending fold into it
    (the dedup key), so a burst of clicks costs two chat.update calls, and the last one draws
    the state after every click. In a batch (firing timers) the requests are gathered and
    written together at its end (request_batched_refreshes)."""
    bulk = session.info.get("bulk")
    if bulk is not None:
        bulk.setdefault("refresh", {})[incident.id] = incident
        return
    when = _refresh_at(incident)
    if enqueue(session, "refresh_checklist", {"incident": incident.id}, incident_id=incident.id,
               not_before=when, dedup_key=f"refresh:{incident.id}"):
        incident.checklist_rendered_at = when


def _refresh_at(incident: Incident):
    now = utcnow()
    last = incident.checklist_rendered_at  # when the latest redraw was planned for
    return now if last is None or now - last >= REFRESH_GAP else last + REFRESH_GAP


def request_batched_refreshes(session: Session) -> None:
    """The refreshes a batch asked for, in one INSERT … ON CONFLICT DO NOTHING (its incidents'
    locks are held by the batch)."""
    incidents = session.info["bulk"].pop("refresh", {})
    if not incidents:
        return
    when = {incident_id: _refresh_at(incident) for incident_id, incident in incidents.items()}
    inserted = enqueue_folded(session, "refresh_checklist", [
        {"payload": {"incident": incident_id}, "incident_id": incident_id, "not_before": when[incident_id],
         "dedup_key": f"refresh:{incident_id}"} for incident_id in sorted(incidents)])
    for incident_id, incident in incidents.items():
        if f"refresh:{incident_id}" in inserted:
            incident.checklist_rendered_at = when[incident_id]


def refresh_task(core: Core, task: Task) -> None:
    incident_id = task.payload["incident"]
    from ..home import request_home_for_incident  # (home reads incidents: imported late)

    # What its people see on their Home tabs changed too (asked here, after the click's own
    # transaction, so a click costs no more writes; folded per person like the checklist).
    request_home_for_incident(core, incident_id)
    with core.db.read() as session:
        incident = session.get(Incident, incident_id)
        if incident is None or incident.checklist_ts is None or incident.channel_id is None:
            return  # provisioning will post the current state
        view = load_view(core, session, incident)
        channel, ts = incident.channel_id, incident.checklist_ts
    text, blocks = render_checklist(core, view)
    core.gateway.update(channel, ts, text, blocks)
