"""PagerDuty Events API v2 backend: a page is an alert triggered under the page's dedup_key,
and resolved under the same key when the page is acknowledged in Slack."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx

from bot.config_types import EnvName, HttpUrl, StrictModel
from bot.durations import Duration
from bot.paging._config import _get, _secret, _timeout, build_checked
from bot.paging._http import check_http_url, post
from bot.paging.base import PageNotice, PagerConfigError, PagerKind
from bot.paging.render import PageRenderer

DEFAULT_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
SOURCE = "safeguard"
ROUTING_KEY_LENGTH = 32

SEVERITIES = {"sev1": "critical", "sev2": "error", "sev3": "warning"}
# A severity the bot does not know is paged as critical: under-paging is the worse mistake.
UNKNOWN_SEVERITY = "critical"


def pagerduty_severity(severity: str) -> str:
    return SEVERITIES.get((severity or "").strip().lower(), UNKNOWN_SEVERITY)


class PagerDutyBackend:
    name = "pagerduty"

    def __init__(
        self,
        events_url: str,
        routing_key: str,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
        *,
        renderer: PageRenderer | None = None,
    ) -> None:
        self.events_url = check_http_url(events_url, "pagerduty events_url")
        if not routing_key or not routing_key.strip():
            raise PagerConfigError("pagerduty routing key is empty")
        if len(routing_key.strip()) != ROUTING_KEY_LENGTH:
            raise PagerConfigError(
                f"pagerduty routing key must be {ROUTING_KEY_LENGTH} characters, "
                f"got {len(routing_key.strip())}"
            )
        self._routing_key = routing_key.strip()
        self.timeout = float(timeout)
        if self.timeout <= 0:
            raise PagerConfigError("pagerduty timeout must be positive")
        self.renderer = renderer or PageRenderer()
        self._client = client

    def __repr__(self) -> str:  # never show the routing key
        return f"PagerDutyBackend(events_url={self.events_url!r}, timeout={self.timeout})"

    # -- events ---------------------------------------------------------------------------

    def trigger_event(self, notice: PageNotice) -> dict[str, Any]:
        event: dict[str, Any] = {
            "routing_key": self._routing_key,
            "event_action": "trigger",
            "dedup_key": notice.dedup_key,
            "payload": {
                "summary": self.renderer.pagerduty_summary(notice),
                "source": SOURCE,
                "severity": pagerduty_severity(notice.severity),
                "component": notice.role,
                "group": notice.incident_ref,
                "class": notice.playbook_title,
                "custom_details": {
                    "incident": notice.incident_ref,
                    "role": notice.role_label or notice.role,
                    "level": notice.level,
                    "reason": notice.reason,
                },
            },
            "client": "Safeguard",
        }
        if notice.channel_link:
            event["client_url"] = notice.channel_link
            event["links"] = [
                {"href": notice.channel_link, "text": f"Slack channel of {notice.incident_ref}"}
            ]
        return event

    def resolve_event(self, notice: PageNotice) -> dict[str, Any]:
        return {
            "routing_key": self._routing_key,
            "event_action": "resolve",
            "dedup_key": notice.dedup_key,
        }

    # -- Backend --------------------------------------------------------------------------

    def send(self, notice: PageNotice) -> None:
        self._post(self.trigger_event(notice), f"pagerduty trigger {notice.dedup_key}")

    def resolve(self, notice: PageNotice) -> None:
        self._post(self.resolve_event(notice), f"pagerduty resolve {notice.dedup_key}")

    def close(self) -> None:
        """Nothing to release: without an injected client each delivery uses its own."""

    def __enter__(self) -> PagerDutyBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, event: dict[str, Any], what: str) -> None:
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        post(
            self._client,
            self.events_url,
            content=body,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            timeout=self.timeout,
            what=what,
        )


# --- the pager kind: its config section and how to build it from that --------------------


class PagerDutyConfig(StrictModel):
    events_url: HttpUrl = "https://events.pagerduty.com/v2/enqueue"
    routing_key_env: EnvName
    timeout: Duration = timedelta(seconds=10)


def _build(section, where: str, env, renderer) -> PagerDutyBackend:
    return build_checked(where, PagerDutyBackend,
                         events_url=str(_get(section, "events_url", default=DEFAULT_EVENTS_URL)),
                         routing_key=_secret(section, where, "routing_key_env", env),
                         timeout=_timeout(_get(section, "timeout"), where), renderer=renderer)


KIND = PagerKind("pagerduty", PagerDutyConfig, _build)
