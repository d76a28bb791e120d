"""The metrics port: the core says what happened (a duration, a count) by name; the runtime turns
it into Prometheus series (runtime/metrics.py). The core never imports prometheus_client, and a
core without a runtime (the CLI, core-level tests) counts nothing.

Labels are fixed, small vocabularies: request kinds, Slack methods and error codes, task kinds,
role ids, backends, policy actions. Never a user id, a text or an incident summary."""

from __future__ import annotations

from typing import Protocol

# Histograms (seconds)
ACK = "ack"  # kind: one of ACK_KINDS
ACK_KINDS = ("command", "action", "view", "event", "shortcut", "options", "other")
SLACK_CALL = "slack_call"  # method
OUTBOX_LAG = "outbox_lag"  # kind: the task kind (how long a task waited past its due time)
TIMER_LATENESS = "timer_lateness"  # kind (remind | page | status | escalate), clock (legal | internal | none)
PAGE_ACK = "page_ack"  # role
# Counters
SLACK_ERRORS = "slack_errors"  # method, code
PAGES = "pages"  # backend, outcome (sent | retry | failed)
FORBIDDEN = "forbidden"  # action


class Metrics(Protocol):
    def observe(self, name: str, value: float, **labels: str) -> None: ...

    def inc(self, name: str, **labels: str) -> None: ...


class NoMetrics:
    def observe(self, name: str, value: float, **labels: str) -> None:
        pass

    def inc(self, name: str, **labels: str) -> None:
        pass


NO_METRICS: Metrics = NoMetrics()
