"""A page notice for the paging tests. The incident title holds an identifier on purpose: no
backend may ever render it."""

from __future__ import annotations

from bot.paging.base import PageNotice

SECRET_TITLE = "victim handle @kid_1234 sent images"


def notice(**overrides) -> PageNotice:
    values = dict(
        page_id=7,
        incident_ref="INC-7",
        incident_title=SECRET_TITLE,
        playbook_title="Confirmed CSAM report",
        severity="sev1",
        role="legal",
        role_label="Legal on-call",
        level=2,
        reason="NCMEC report not filed 24h after confirmation",
        channel_id="C0INC7",
        channel_link="https://example.slack.com/archives/C0INC7",
        users=["U0LEGAL01"],
        emails=["legal@example.org"],
    )
    values.update(overrides)
    return PageNotice(**values)
