"""Prometheus metrics for one bot: its own CollectorRegistry (tests build many bots in one
process; nothing goes to prometheus_client's global registry), the histograms and counters the
core reports through the metrics port (bot/metrics.py), and the database gauges read on each
scrape by a custom collector. Names and labels are listed in the README."""

from __future__ import annotations

import logging
import re

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from bot import metrics as port
from bot.db.engine import Database
from bot.db.models import Incident, Page, Task, Timer

log = logging.getLogger(__name__)
# The classic text format, which every Prometheus reads (generate_latest writes it).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LABEL = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def label(value: object) -> str:
    """A label value from a small vocabulary (a method, a code, a role id); anything else, which
    could be text someone wrote, becomes `other`."""
    text = str(value)
    return text if _LABEL.fullmatch(text) else "other"


class DatabaseCollector:
    """The state of the rows, counted when Prometheus scrapes (one grouped query per table)."""

    GAUGES = (
        ("safeguard_incidents", "Incidents by status.", Incident.status, "status"),
        ("safeguard_timers", "Timers by state.", Timer.state, "state"),
        ("safeguard_tasks", "Outbox tasks by state (dead = gave up).", Task.state, "state"),
        ("safeguard_pages", "Pages by state.", Page.state, "state"),
    )

    def __init__(self, db: Database) -> None:
        self.db = db

    def describe(self):
        return []  # collected on scrape only (never at registration, which may precede migrations)

    def collect(self):
        up = GaugeMetricFamily("safeguard_database_up", "Whether the last scrape could read the database.")
        families = []
        try:
            with self.db.read() as session:
                for name, doc, column, label_name in self.GAUGES:
                    family = GaugeMetricFamily(name, doc, labels=[label_name])
                    for value, count in session.execute(select(column, func.count()).group_by(column)):
                        family.add_metric([label(value)], count)
                    families.append(family)
            up.add_metric([], 1)
        except Exception as err:  # the database is down: say so, never fail the scrape
            log.warning("metrics: cannot read the database (%s)", type(err).__name__)
            up.add_metric([], 0)
            families = []
        yield up
        yield from families


_SECONDS_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10)
_SECONDS_SLOW = (0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)
_PAGE_ACK = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200)


class PrometheusMetrics:
    """The runtime side of the metrics port."""

    def __init__(self, db: Database | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.histograms = {
            port.ACK: Histogram("safeguard_ack_seconds", "Time from a Slack request reaching the bot to its ack.",
                                ["kind"], registry=r, buckets=_SECONDS_FAST),
            port.SLACK_CALL: Histogram("safeguard_slack_call_seconds", "Time of a Slack Web API call, retries included.",
                                       ["method"], registry=r, buckets=_SECONDS_FAST),
            port.OUTBOX_LAG: Histogram("safeguard_outbox_lag_seconds",
                                       "How long an outbox task waited past its due time before a worker took it.",
                                       ["kind"], registry=r, buckets=_SECONDS_SLOW),
            port.TIMER_LATENESS: Histogram("safeguard_timer_lateness_seconds",
                                           "How long after its due time a timer fired.",
                                           ["kind", "clock"], registry=r, buckets=_SECONDS_SLOW),
            port.PAGE_ACK: Histogram("safeguard_page_ack_seconds", "Time from a page to its acknowledgement.",
                                     ["role"], registry=r, buckets=_PAGE_ACK),
        }
        self.counters = {
            port.SLACK_ERRORS: Counter("safeguard_slack_errors", "Slack Web API calls that failed, by Slack's code.",
                                       ["method", "code"], registry=r),
            port.PAGES: Counter("safeguard_page_deliveries", "Page deliveries by backend and outcome.",
                                ["backend", "outcome"], registry=r),
            port.FORBIDDEN: Counter("safeguard_forbidden_actions", "Actions the role policy refused.",
                                    ["action"], registry=r),
        }
        for kind in port.ACK_KINDS:  # every kind's series from the start (at 0), so rate() alerts work at once
            self.histograms[port.ACK].labels(kind=kind)
        if db is not None:
            r.register(DatabaseCollector(db))

    def observe(self, name: str, value: float, **labels: str) -> None:
        histogram = self.histograms.get(name)
        if histogram is not None:
            histogram.labels(**{k: label(v) for k, v in labels.items()}).observe(max(float(value), 0.0))

    def inc(self, name: str, **labels: str) -> None:
        counter = self.counters.get(name)
        if counter is not None:
            counter.labels(**{k: label(v) for k, v in labels.items()}).inc()

    def slack_call(self, method: str, seconds: float, error: str | None) -> None:
        """The gateway's one hook: every Web API call, and its error code when Slack refused it."""
        self.observe(port.SLACK_CALL, seconds, method=method)
        if error is not None:
            self.inc(port.SLACK_ERRORS, method=method, code=error)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
