"""Page texts, rendered from Jinja2 templates in ``templates/pages/``.

Templates see only the content-safe fields of a notice (see :func:`page_context`); referring
to anything else (the incident title, the recipients) is an error under StrictUndefined, so a
template cannot leak what it was never given.

An override folder may hold any of the same file names; those win over the shipped ones.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jinja2

from bot.paging.base import PageNotice, PagerConfigError

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
PAGES_DIR = TEMPLATES_DIR / "pages"

EMAIL_SUBJECT = "email_subject.txt"
EMAIL_BODY = "email_body.txt"
PAGERDUTY_SUMMARY = "pagerduty_summary.txt"
WEBHOOK_BODY = "webhook.json"

PAGERDUTY_SUMMARY_MAX = 1024
SUBJECT_MAX = 250

_SPACE = re.compile(r"\s+")


def make_environment(override: str | Path | None = None) -> jinja2.Environment:
    """A Jinja2 environment over the shipped page templates, ``override`` searched first."""
    folders = [str(PAGES_DIR)]
    if override is not None:
        folders.insert(0, str(Path(override)))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml"),
            disabled_extensions=("txt", "json"),
            default_for_string=False,
            default=False,
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["oneline"] = lambda text, limit=SUBJECT_MAX * 4: one_line(str(text), limit)
    return env


def page_context(notice: PageNotice, *, event: str = "page") -> dict[str, Any]:
    """The only values a page template may use. ``event`` is ``page`` or ``page_resolved``."""
    if event not in ("page", "page_resolved"):
        raise ValueError(f"unknown page event {event!r}")
    return {
        "type": event,
        "resolved": event == "page_resolved",
        "page_id": notice.page_id,
        "dedup_key": notice.dedup_key,
        "incident_ref": notice.incident_ref,
        "playbook_title": notice.playbook_title,
        "severity": notice.severity,
        "severity_label": notice.severity.upper(),
        "role": notice.role,
        "role_label": notice.role_label or notice.role,
        "level": notice.level,
        "reason": notice.reason,
        "channel_id": notice.channel_id,
        "channel_link": notice.channel_link,
    }


def one_line(text: str, limit: int) -> str:
    """Collapse all whitespace (newlines included) to single spaces and cut to ``limit`` chars."""
    text = _SPACE.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


class PageRenderer:
    """Renders the texts of a page. Cheap to build; build one per backend or share one."""

    def __init__(
        self,
        override: str | Path | None = None,
        *,
        environment: jinja2.Environment | None = None,
    ) -> None:
        self.env = environment if environment is not None else make_environment(override)

    def render(self, template: str, notice: PageNotice, *, event: str = "page") -> str:
        """Render one page template. A broken or missing template (e.g. an override that
        names a field pages do not carry) is a configuration error: PagerConfigError."""
        context = page_context(notice, event=event)
        try:
            return self.env.get_template(template).render(context)
        except jinja2.TemplateError as exc:
            raise PagerConfigError(
                f"page template {template}: {type(exc).__name__}: {exc}"
            ) from exc

    def email_subject(self, notice: PageNotice) -> str:
        return one_line(self.render(EMAIL_SUBJECT, notice), SUBJECT_MAX)

    def email_body(self, notice: PageNotice) -> str:
        return self.render(EMAIL_BODY, notice).rstrip() + "\n"

    def pagerduty_summary(self, notice: PageNotice) -> str:
        return one_line(self.render(PAGERDUTY_SUMMARY, notice), PAGERDUTY_SUMMARY_MAX)

    def webhook_body(self, notice: PageNotice, *, event: str = "page") -> dict[str, Any]:
        """The webhook payload as a dict (the template must render one JSON object)."""
        text = self.render(WEBHOOK_BODY, notice, event=event)
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PagerConfigError(f"{WEBHOOK_BODY} did not render valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise PagerConfigError(f"{WEBHOOK_BODY} must render a JSON object")
        return body
