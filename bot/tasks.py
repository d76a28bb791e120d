"""The kinds of outbox task and what each does."""

from __future__ import annotations

from datetime import timedelta

from .core import Core
from .db.models import Incident, Task
from .dispatcher import GiveUp, Retry
from .incidents.checklist import refresh_task
from .incidents.provision import provision_task
from .slack_gateway import SlackError
from .timeline.store import append

# Errors after which posting again cannot succeed.
FINAL_POST_ERRORS = {"channel_not_found", "is_archived", "not_in_channel", "invalid_blocks",
                     "msg_blocks_too_long", "no_text", "account_inactive", "invalid_auth"}


def _slack(call):
    try:
        return call()
    except SlackError as err:
        if err.code in FINAL_POST_ERRORS:
            raise GiveUp(str(err)) from None
        raise Retry(str(err)) from None


def post_task(core: Core, task: Task) -> None:
    p = task.payload
    _slack(lambda: core.gateway.post(p["channel"], p["text"], p.get("blocks"), thread_ts=p.get("thread_ts")))
    if p.get("event"):
        with core.db.tx() as session:
            event = p["event"]
            append(session, task.incident_id, event["kind"], event["text"], actor=event.get("actor"),
                   data=event.get("data", {}))


def close_channel_task(core: Core, task: Task) -> None:
    p = task.payload
    refresh_task(core, task)
    if not p.get("announced"):
        _slack(lambda: core.gateway.post(p["channel"], p["text"]))
        p["announced"] = True  # in memory only: a retry may announce twice, never archive early
    if p.get("archive"):
        _slack(lambda: core.gateway.archive(p["channel"]))
        with core.db.tx() as session:
            incident = session.get(Incident, p["incident"])
            incident.archived = True
            append(session, incident.id, "channel_archived", "Archived the incident channel",
                   data={"channel_id": p["channel"]})


def register_tasks(core: Core) -> None:
    d = core.dispatcher
    d.register("provision", lambda t: provision_task(core, t), max_retry=timedelta(minutes=1))
    d.register("refresh_checklist", lambda t: _slack(lambda: refresh_task(core, t)), max_attempts=20)
    d.register("post", lambda t: post_task(core, t), max_attempts=20)
    d.register("close_channel", lambda t: close_channel_task(core, t), max_attempts=20)
