"""Render an incident's timeline and post-incident review as md, html, json or csv.

* ``json``: the timeline contract, a list (oldest first) of ``seq, at, kind, actor, text, data,
  prev_hash, hash``.
* ``csv``: the same columns, ``data`` as compact JSON; cells that a spreadsheet would read as
  a formula are defused with a leading ``'`` (:func:`parse_csv` undoes it).
* ``md``: the post-incident review from ``review.md.j2``.
* ``html``: the same review as a standalone page from ``timeline.html.j2`` (autoescaped, no
  scripts, no external resources).

Templates are looked up in ``template_dir`` first (an organisation's own folder), then in the
shipped ``templates/``. They receive the context built by :func:`review_context`.

User-supplied text is untrusted. HTML autoescapes it. In Markdown every ``{{ value }}`` is
escaped by default (see :func:`md_cell`): no links, images, raw HTML, code spans or table
breaks can come out of it; multi-line text goes through the ``md_block`` filter instead.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup

from bot.timeline import chain
from bot.timeline.review import (
    NO_CONTENT_STATEMENT,
    PRESERVATION_BASIS,
    IncidentReview,
    clock_rows,
    evidence_references,
    format_duration,
    format_utc,
    impact_figures,
    report_records,
    review_meeting_due,
    skipped_steps,
    utc,
)

Format = Literal["md", "html", "json", "csv"]
FORMATS: tuple[str, ...] = ("md", "html", "json", "csv")

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
REVIEW_TEMPLATE = "review.md.j2"
HTML_TEMPLATE = "timeline.html.j2"

CSV_HEADER = ("seq", "at", "kind", "actor", "text", "data", "prev_hash", "hash")

_MEDIA_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
}
_FILE_KIND = {"md": "review", "html": "review", "json": "timeline", "csv": "timeline"}


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return fmt


def media_type(fmt: Format | str) -> str:
    """The HTTP media type of a format, e.g. ``text/csv; charset=utf-8``."""
    return _MEDIA_TYPES[_check_format(fmt)]


_SAFE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,40}")


def filename(review: IncidentReview, fmt: Format | str) -> str:
    """``INC-7-review.md``, ``INC-7-review.html``, ``INC-7-timeline.json``, ``INC-7-timeline.csv``."""
    _check_format(fmt)
    ref = review.ref if _SAFE_REF.fullmatch(review.ref or "") else f"INC-{int(review.number)}"
    return f"{ref}-{_FILE_KIND[fmt]}.{fmt}"


# --------------------------------------------------------------------------- json / csv


def _timeline(review: IncidentReview) -> list[dict[str, Any]]:
    return [event.to_json() for event in review.ordered_events()]


def render_json(review: IncidentReview) -> str:
    return json.dumps(_timeline(review), indent=2, ensure_ascii=False)


# OWASP's list: = + - @ and also tab and carriage return. A cell that starts with ' is quoted
# too, so that parse_csv can undo the defusing without ambiguity.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def defuse_cell(value: str) -> str:
    """Prefix a ``'`` to a cell a spreadsheet would read as a formula."""
    if value.startswith(_FORMULA_START):
        return "'" + value
    return value


def undefuse_cell(value: str) -> str:
    return value[1:] if value.startswith("'") else value


def render_csv(review: IncidentReview) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    dumps = json.dumps
    for event in review.ordered_events():
        writer.writerow(
            (
                event.seq,
                chain.format_at(event.at),
                defuse_cell(event.kind),
                "" if event.actor is None else defuse_cell(event.actor),
                defuse_cell(event.text),
                defuse_cell(dumps(event.data, separators=(",", ":"), ensure_ascii=False)),
                defuse_cell(event.prev_hash),
                defuse_cell(event.hash),
            )
        )
    return out.getvalue()


def parse_csv(text: str) -> list[dict[str, Any]]:
    """Read a CSV export back into the timeline contract's dicts (an empty actor is None)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    if tuple(header) != CSV_HEADER:
        raise ValueError(f"not a timeline CSV: header {header!r}")
    events = []
    for row in reader:
        cells = dict(zip(CSV_HEADER, (undefuse_cell(c) for c in row), strict=True))
        events.append(
            {
                "seq": int(cells["seq"]),
                "at": cells["at"],
                "kind": cells["kind"],
                "actor": cells["actor"] or None,
                "text": cells["text"],
                "data": json.loads(cells["data"]),
                "prev_hash": cells["prev_hash"],
                "hash": cells["hash"],
            }
        )
    return events


# --------------------------------------------------------------------------- markdown escaping


class MdSafe(str):
    """Markdown that is already escaped (the Markdown analogue of ``markupsafe.Markup``)."""

    __slots__ = ()


_MD_INLINE = str.maketrans(
    {
        "\\": "\\\\",
        "`": "\\`",
        "*": "\\*",
        "_": "\\_",
        "~": "\\~",
        "[": "\\[",
        "]": "\\]",
        "|": "\\|",
        "$": "\\$",
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
    }
)
# Line breaks Markdown or an editor could honour, and the other control characters.
_LINE_BREAKS = re.compile(r"\r\n|[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f]")
# Defang URLs so no renderer turns them into a link or a preview.
_URL_SCHEME = re.compile(r"\b(h)tt(ps?)(?=:)|\b(f)t(p)(?=:)", re.IGNORECASE)
# What starts a block at the beginning of a line: heading, quote, list, rule, setext underline,
# fence, table row, ordered list (``1.`` / ``1)``).
_BLOCK_START = re.compile(r"^(?:([#+\-=:])|(\d+)([.)]))")


def _defang(match: re.Match[str]) -> str:
    if match.group(1):
        return f"{match.group(1)}xx{match.group(2)}"  # http -> hxxp, https -> hxxps
    return f"{match.group(3)}x{match.group(4)}"  # ftp -> fxp


def _escape_block_start(match: re.Match[str]) -> str:
    if match.group(1):
        return "\\" + match.group(1)  # "# x" -> "\# x"
    return f"{match.group(2)}\\{match.group(3)}"  # "1. x" -> "1\. x"


def md_inline(value: Any) -> MdSafe:
    """Escape ``value`` for a Markdown line: no link, image, raw HTML, code or emphasis."""
    if isinstance(value, MdSafe):
        return value
    text = _CONTROLS.sub("", str(value)).translate(_MD_INLINE)
    if ":" in text:
        text = _URL_SCHEME.sub(_defang, text)
    return MdSafe(text)


def md_cell(value: Any) -> MdSafe:
    """Escape ``value`` for a Markdown table cell: also no line break."""
    if isinstance(value, MdSafe):
        return value
    text = str(value)
    if not text.isprintable():
        text = _LINE_BREAKS.sub(" ", text)
    return md_inline(text)


def md_block(value: Any) -> MdSafe:
    """Escape multi-line text as Markdown paragraphs: each line inline-escaped, anything that
    would start a block (heading, list, quote, fence, indented code) neutralised."""
    if value is None:
        return MdSafe("")
    if isinstance(value, MdSafe):
        return value
    lines = _LINE_BREAKS.sub("\n", str(value)).split("\n")
    out: list[str] = []
    for raw in lines:
        line = raw.strip()
        if not line:
            if out and out[-1] != "":
                out.append("")
            continue
        escaped = md_inline(line)
        out.append(_BLOCK_START.sub(_escape_block_start, escaped, count=1))
    while out and out[-1] == "":
        out.pop()
    return MdSafe("\n".join(out))


def _md_finalize(value: Any) -> Any:
    """Every ``{{ value }}`` in a Markdown template: escaped as a table cell unless marked safe."""
    if value is None:
        return ""
    if isinstance(value, MdSafe):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return format_utc(value)
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, int | float):
        return str(value)
    return md_cell(value)


def _html_finalize(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return format_utc(value)
    if isinstance(value, timedelta):
        return format_duration(value)
    return value


# --------------------------------------------------------------------------- slack markup

# Slack's own markup in event texts: <@U…>, <#C…|name>, <!subteam^S…|@handle>, <!date^…|fallback>,
# <!here>. Anything else between angle brackets (e.g. "<script>") is left alone, to be escaped.
_SLACK_MARKUP = re.compile(r"<([@#!][^<>\n]*)>")
_SPECIAL_MENTIONS = ("!here", "!channel", "!everyone")


def slack_plain(text: Any, name: Any = None) -> str:
    """Event text as a reader sees it in Slack: ``<@U0LEAD001>`` becomes ``@Ana`` (``name``
    maps a user id to a display name), ``<!date^…|2025-03-03 10:00 UTC>`` its fallback text,
    ``<#C…|general>`` ``#general``. The result is plain text, escaped by the template as usual."""
    if text is None:
        return ""

    def replace(match: re.Match[str]) -> str:
        target, _, label = match.group(1).partition("|")
        if target.startswith("@"):
            user = target[1:]
            shown = name(user) if name is not None else None
            return "@" + (shown if shown and shown != user else label or user)
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!subteam^"):
            return label or "@" + target[len("!subteam^"):]
        if target.startswith("!date^"):
            return label or match.group(0)
        if target in _SPECIAL_MENTIONS:
            return "@" + target[1:]
        return match.group(0)

    return _SLACK_MARKUP.sub(replace, str(text))


# --------------------------------------------------------------------------- environments


def _iso(at: datetime | None) -> str:
    return chain.format_at(at) if at is not None else ""


def _short_hash(value: str | None, n: int = 12) -> str:
    return (value or "")[:n]


@lru_cache(maxsize=16)
def _environment(kind: Literal["md", "html"], template_dir: str | None) -> jinja2.Environment:
    folders = [str(TEMPLATES_DIR)]
    if template_dir is not None:
        folders.insert(0, template_dir)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
        autoescape=(kind == "html"),
        finalize=_html_finalize if kind == "html" else _md_finalize,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        utc=format_utc,
        iso=_iso,
        duration=format_duration,
        short_hash=_short_hash,
    )
    if kind == "md":
        env.filters.update(md=md_inline, md_cell=md_cell, md_block=md_block)
    return env


def environment(
    kind: Literal["md", "html"], template_dir: Path | None = None
) -> jinja2.Environment:
    """The (cached) Jinja2 environment for Markdown or HTML templates."""
    return _environment(kind, str(Path(template_dir).resolve()) if template_dir else None)


# --------------------------------------------------------------------------- review context


# The bot's own bookkeeping: folded on the review page (a <details>), so the people's actions read
# as a story. Failures (invite_failed, page_failed, timeline_export_failed, …) stay in view.
SYSTEM_KINDS = frozenset({
    "channel_created", "channel_archived", "topic_set", "checklist_posted", "checklist_pinned",
    "member_invited", "member_joined", "member_left", "step_activated", "step_waiting",
    "timer_armed", "timer_fired", "timer_cancelled", "timer_kept", "reminder_sent",
    "timeline_exported", "timeline_link", "page_opened", "page_resolved",
})


def _when(tz: ZoneInfo | None):
    """`<time datetime="…Z" title="… UTC">` showing the time in the reader's zone (their Slack
    time zone on the served page; UTC in a file, where there is no reader to ask)."""

    def when(at: datetime | None, *, short: bool = False) -> Markup:
        if at is None:
            return Markup("")
        moment = utc(at)
        shown = moment.astimezone(tz) if tz is not None else moment
        text = shown.strftime("%Y-%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S") + " " + (shown.tzname() or "UTC")
        return Markup('<time datetime="{}" title="{}">{}</time>').format(
            chain.format_at(moment), format_utc(moment), text)

    return when


def review_context(review: IncidentReview, reader_tz: ZoneInfo | None = None) -> dict[str, Any]:
    """Everything the review templates may use."""
    events = review.ordered_events()
    integrity = chain.verify([event.to_json() for event in events])
    steps = {step.id: step for step in review.steps}
    return {
        "review": review,
        "events": events,
        "integrity": integrity,
        "head_hash": events[-1].hash if events and integrity.ok else None,
        "t0": review.confirmed_at,
        "clock_rows": clock_rows(review),
        "reports": report_records(review),
        "preservation_basis": PRESERVATION_BASIS,
        "skipped_steps": skipped_steps(review),
        "steps": review.steps,
        "step_titles": {step_id: step.title for step_id, step in steps.items()},
        "impact": impact_figures(review),
        "meeting": review_meeting_due(review),
        "evidence": evidence_references(review),
        "name": review.display_name,
        "plain": lambda text: slack_plain(text, review.display_name),
        "statement": NO_CONTENT_STATEMENT,
        "corrected_by": corrected_by(events),
        "when": _when(reader_tz),
        "zone": (reader_tz.key if reader_tz is not None else "UTC"),
        "role": review.role_label,
        "system_kinds": SYSTEM_KINDS,
        "people_events": [e for e in events if e.kind not in SYSTEM_KINDS],
        "system_events": [e for e in events if e.kind in SYSTEM_KINDS],
    }


def corrected_by(events) -> dict[int, list[int]]:
    """{seq of an event: seqs of the corrections that name it}, for "corrected by #N" marks."""
    found: dict[int, list[int]] = {}
    for event in events:
        if event.kind == "correction" and isinstance(event.data.get("corrects"), int):
            found.setdefault(event.data["corrects"], []).append(event.seq)
    return found


def render_markdown(review: IncidentReview, *, template_dir: Path | None = None) -> str:
    template = environment("md", template_dir).get_template(REVIEW_TEMPLATE)
    return template.render(review_context(review))


def render_html(review: IncidentReview, *, template_dir: Path | None = None, reader_tz: ZoneInfo | None = None) -> str:
    template = environment("html", template_dir).get_template(HTML_TEMPLATE)
    return template.render(review_context(review, reader_tz))


def render(review: IncidentReview, fmt: Format | str, *, template_dir: Path | None = None,
           reader_tz: ZoneInfo | None = None) -> str:
    """The incident's timeline (json, csv) or post-incident review (md, html) as text."""
    _check_format(fmt)
    if fmt == "json":
        return render_json(review)
    if fmt == "csv":
        return render_csv(review)
    if fmt == "md":
        return render_markdown(review, template_dir=template_dir)
    return render_html(review, template_dir=template_dir, reader_tz=reader_tz)
