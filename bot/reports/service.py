"""Giving a lead the report in Slack: a signed, expiring, personal link to ``/reports``."""

from __future__ import annotations

from urllib.parse import urlencode

from ..clocks.now import utcnow
from ..core import Core
from ..errors import InvalidInput
from ..timeline import links
from ..timeline.service import link_secret
from .build import check_reader
from .period import Period, period_of


def scope(period: Period, playbook: str | None) -> str:
    """What a report link is signed over: the period and the playbook filter."""
    return f"{period.first}|{period.last}|{playbook or ''}"


def report_link(core: Core, actor: str, first: str | None = None, last: str | None = None,
                playbook: str | None = None) -> tuple[str, Period]:
    """The link for `actor` (an incident lead) to the report of the period; valid one hour."""
    check_reader(core, actor)
    period = period_of(first, last, utcnow().date())
    if playbook is not None and playbook not in core.playbooks:
        raise InvalidInput(f"There is no playbook `{playbook[:64]}` (playbooks: {', '.join(sorted(core.playbooks))}).")
    secret = link_secret(core.settings)
    if not secret:
        raise InvalidInput("Report pages need a secret to sign links (SLACK_SIGNING_SECRET); an operator can run "
                           "`safeguard report` instead.")
    token = links.sign_report_link(secret, scope(period, playbook), links.default_expiry(utcnow()), actor)
    query = {"from": period.first.isoformat(), "to": period.last.isoformat()}
    if playbook:
        query["playbook"] = playbook
    query[links.TOKEN_PARAM] = token
    base = (core.settings.public_url or f"http://127.0.0.1:{core.settings.port}").rstrip("/")
    return f"{base}/reports?{urlencode(query)}", period
