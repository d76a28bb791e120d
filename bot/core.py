"""What the domain functions need, in one object built by the application factory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .clocks.dispatcher import Dispatcher
from .config import OrgConfig
from .db.engine import Database
from .metrics import NO_METRICS, Metrics
from .playbooks import Playbook
from .render import Renderer
from .settings import Settings


@dataclass
class Core:
    settings: Settings
    db: Database
    config: OrgConfig
    playbooks: dict[str, Playbook]
    render: Renderer
    dispatcher: Dispatcher
    gateway: Any = None  # the one door to Slack (runtime.slack_gateway.SlackGateway); None in the CLI
    backends: dict = field(default_factory=dict)  # paging backends by name (not Slack)
    # Aims the scheduler at a timer's due time (wired to APScheduler by the app factory).
    wake: Callable[[datetime | None], None] = field(default=lambda due: None)
    # Where the core reports durations and counts (bot.metrics; Prometheus in the runtime).
    metrics: Metrics = field(default=NO_METRICS)

    # When Slack last confirmed that someone is in a channel (bot.policy): checked again after a minute.
    membership_seen: dict[tuple[str, str], float] = field(default_factory=dict)
    # Who opened the Home tab since this process started: only their tabs are published again when
    # something changes (everyone else's would be work for nobody; opening the tab publishes it).
    home_seen: set[str] = field(default_factory=set)
    members_cursor: int = 0  # where the next membership check starts (incidents.people.reconcile)

    # An incident's playbook never changes: remembered, so a click costs no read to learn it.
    _playbook_ids: dict[int, str] = field(default_factory=dict)

    def playbook_id_of(self, incident_id: int) -> str:
        """The playbook id of an incident; NotFound when there is no such incident."""
        known = self._playbook_ids.get(incident_id)
        if known is None:
            from .db.models import Incident
            from .errors import NotFound

            with self.db.read() as session:
                incident = session.get(Incident, incident_id)
                if incident is None:
                    raise NotFound(f"There is no incident INC-{incident_id}.")
                known = incident.playbook_id
            if len(self._playbook_ids) > 100_000:
                self._playbook_ids.clear()
            self._playbook_ids[incident_id] = known
        return known

    def playbook(self, playbook_id: str) -> Playbook:
        return self.playbooks[playbook_id]

    def role_label(self, role: str) -> str:
        cfg = self.config.roles.get(role)
        return cfg.label if cfg else role.replace("_", " ")

    def is_lead(self, user_id: str) -> bool:
        return user_id in self.config.leads
