"""The kinds of outbox task and what each does."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.errors import SlackError

from .clocks.dispatcher import GiveUp, Retry
from .clocks.outbox import enqueue
from .core import Core
from .db.models import Incident, Task
from .incidents.checklist import refresh_task
from .incidents.provision import bookmarks_task, declared_ready_task, provision_task, topic_task
from .timeline.store import append
from .tokens import is_api_actor

# Errors after which posting again cannot succeed.
FINAL_POST_ERRORS = {"channel_not_found", "is_archived", "not_in_channel", "invalid_blocks", "msg_too_long",
                     "msg_blocks_too_long", "no_text", "account_inactive", "invalid_auth"}


def _slack(call):
    try:
        return call()
    except SlackError as err:
        if err.code in FINAL_POST_ERRORS:
            raise GiveUp(str(err)) from None
        raise Retry(str(err)) from None


TASK_EVENT = "safeguard_task"


def post_once(core: Core, task: Task, channel: str, text: str, blocks=None, *, thread_ts: str | None = None,
              identity: dict | None = None, look_first: bool = False) -> str:
    """Post a task's message at most once: it carries the task's id as message metadata, it is
    not retried blindly by slack_sdk after a 5xx (Slack may have posted it), and a retry of the
    task (after a crash or a lost answer) first looks for it in the channel. `identity` (also
    carried) names the message beyond the task, so another task can find it (`look_first`)."""
    payload = {"task": task.id, **(identity or {})}
    if task.attempts > 1 or look_first:
        found = core.gateway.find_posted(channel, TASK_EVENT, identity or payload)
        if found:
            return found
    return core.gateway.post(channel, text, blocks, thread_ts=thread_ts, once=True,
                             metadata={"event_type": TASK_EVENT, "event_payload": payload})


def post_task(core: Core, task: Task):
    p = task.payload
    return _post_and_record(core, task, p["channel"], p["text"], p.get("blocks"), thread_ts=p.get("thread_ts"))


class _Record:
    """The timeline event a post carries, written in the dispatcher's group commit with the task
    marked done (one commit for many reminders, not one each)."""

    def __init__(self, incident_id: int, event: dict) -> None:
        self.incident_id, self.event = incident_id, event

    def __call__(self, session) -> None:
        e = self.event
        append(session, self.incident_id, e["kind"], e["text"], actor=e.get("actor"), data=e.get("data", {}))


def _post_and_record(core: Core, task: Task, channel: str, text: str, blocks=None, *,
                     thread_ts: str | None = None):
    """Post once; the timeline event the task carries is written when the task is recorded done
    (a reminder is `reminder_sent` only once Slack has it)."""
    _slack(lambda: post_once(core, task, channel, text, blocks, thread_ts=thread_ts))
    event = task.payload.get("event")
    return _Record(task.incident_id, event) if event else None


def channel_post_task(core: Core, task: Task):
    """A message for an incident channel that did not exist when it was asked for: posted once the
    channel is there; if Slack gave up creating it, posted where the incident was declared (and
    said so), else to the declarer directly. Never dropped."""
    p = task.payload
    with core.db.read() as session:
        incident = session.get(Incident, p["incident"])
        channel, declared_in, declarer = incident.channel_id, incident.declared_in, incident.declared_by
        failed = incident.channel_id is None and incident.provisioned_at is None and session.scalar(
            select(Task.id).where(Task.incident_id == incident.id, Task.kind == "provision", Task.state == "dead")
            .limit(1)) is not None
    text = p["text"]
    if channel is None and not failed:
        raise Retry("waiting for the incident channel", timedelta(seconds=2), counts=False)
    if channel is None:
        # A token (`api:NAME`) has no Slack DM: the first lead is told instead.
        channel = declared_in or (declarer if not is_api_actor(declarer) else next(iter(core.config.leads), None))
        if channel is None:
            raise GiveUp("no channel, and nobody to tell")
        text = f"_(INC-{incident.id}'s channel could not be created, so this comes here.)_\n{text}"
    return _post_and_record(core, task, channel, text)


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


def provision_failed(core: Core, task: Task, error: str) -> None:
    """Slack kept refusing to set the incident up: tell the declarer and the leads directly, so
    nobody believes a channel exists that does not."""
    with core.db.tx() as session:
        incident = session.get(Incident, task.payload["incident"])
        append(session, incident.id, "provision_failed", f"Could not finish setting up the channel: {error[:300]}",
               data={"error": error[:1000], "attempts": task.attempts})
        text = (f":rotating_light: Safeguard could not finish setting up INC-{incident.id} in Slack "
                f"({error.splitlines()[0][:200]}). The incident and its clocks are recorded; run "
                "`/incident list` and tell the bot's maintainers. Work the incident by hand meanwhile.")
        declarer = [] if is_api_actor(incident.declared_by) else [incident.declared_by]
        for user in dict.fromkeys([*declarer, *core.config.leads]):
            enqueue(session, "post", {"channel": user, "text": text}, incident_id=incident.id)


def register_tasks(core: Core) -> None:
    d = core.dispatcher
    # About half an hour of retries (backoff capped at a minute), then people are told.
    d.register("provision", lambda t: provision_task(core, t), max_retry=timedelta(minutes=1), max_attempts=40,
               on_dead=lambda t, e: provision_failed(core, t, e))
    d.register("declared_ready", lambda t: _slack(lambda: declared_ready_task(core, t)), max_attempts=5)
    d.register("refresh_checklist", lambda t: _slack(lambda: refresh_task(core, t)), max_attempts=20)
    d.register("post", lambda t: post_task(core, t), max_attempts=20)
    # Waits for the channel as long as provisioning tries (then falls back): no attempt limit.
    d.register("channel_post", lambda t: channel_post_task(core, t), max_retry=timedelta(seconds=30))
    d.register("topic", lambda t: _slack(lambda: topic_task(core, t)), max_attempts=20)
    d.register("close_channel", lambda t: close_channel_task(core, t), max_attempts=20)
    d.register("bookmarks", lambda t: _slack(lambda: bookmarks_task(core, t)), max_attempts=10)
