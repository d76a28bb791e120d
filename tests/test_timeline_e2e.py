"""The timeline end to end: what responders add (notes, the "Add to timeline" shortcut, 📌), what
the bot never keeps (files), and `/incident timeline md|json|csv` posted as files, through the
sandbox over real HTTP; and the legal-clock table of a worked `csam-report` under freezegun."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from freezegun import freeze_time
from sqlalchemy import MetaData, create_engine, select

from bot.db.models import Incident
from bot.timeline import chain, export
from bot.timeline.build import build_review
from tests.conftest import make_bot
from tests.support import wait_for

pytestmark = pytest.mark.e2e

LEAD, DEPUTY, SPEC, LEGAL, OUTSIDER = "U0LEAD001", "U0DEPU001", "U0SPEC001", "U0LEGAL01", "U0OUTSID1"
CONTRACT_KEYS = ["seq", "at", "kind", "actor", "text", "data", "prev_hash", "hash"]
REVIEW_SECTIONS = [
    "## Summary", "## Impact", "## Responders and roles", "## Checklist", "## Timeline", "## Legal clocks",
    "## Pages", "## Skipped steps and why", "## Contributing factors", "## Resolution", "## Action items",
    "## Review meeting",
]


def declare(running, summary: str = "Hash match on upload 8812"):
    result = running.driver.command(LEAD, f"declare csam-report {summary}")
    assert result.ok, result
    channel = running.provisioned(1)
    assert channel.name == "inc-1-csam-report" and running.ws.pins(channel.id)
    running.settle()
    running.sandbox.events.wait()
    return channel


def notes(running, number: int = 1) -> list[dict]:
    return [e for e in running.timeline(number) if e["kind"] == "note"]


def notes_of(running, ts: str) -> list[dict]:
    return [e for e in notes(running) if e["data"].get("message_ts") == ts]


def ephemerals(running, channel: str, user: str, needle: str) -> list:
    return [m for m in running.ws.ephemeral(channel, user) if needle in m.text]


def database_dump(db_url: str) -> str:
    """Every row of every table, as one string: what a reader of the database could see."""
    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return "\n".join(repr(row) for table in meta.sorted_tables for row in conn.execute(select(table)))
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- adding to the timeline


def test_a_correction_is_a_new_event_naming_the_one_it_corrects(running):
    channel = declare(running)
    added = running.driver.command(SPEC, "note Report filed as 123465", channel=channel.id)
    wrong = int(re.search(r"\(#(\d+)\)", added.message.text).group(1))
    before = running.timeline(1)

    answer = running.driver.command(LEAD, f"correct {wrong} The report id is 123456, not 123465",
                                    channel=channel.id)
    assert f"Correction of event #{wrong}" in answer.message.text
    after = running.timeline(1)
    assert after[:len(before)] == before  # nothing changed, one event added
    [fix] = after[len(before):]
    assert fix["kind"] == "correction" and fix["actor"] == LEAD
    assert fix["data"] == {"corrects": wrong, "corrects_kind": "note", "corrects_hash": before[wrong - 1]["hash"]}
    assert chain.verify(after).ok

    review = build_review(running.core, 1)
    md = export.render(review, "md")
    assert f"| #{wrong} |" in md and f"note (corrected by #{fix['seq']})" in md
    assert f"correction of #{wrong}" in md
    html = export.render(review, "html")
    assert f'<a href="#e{wrong}">#{wrong}</a>' in html

    for bad, says in [("correct 999 Something", "has no event #999"), ("correct 3", "Usage"),
                      ("correct abc Text", "Usage"), ("correct \u00b2 Text", "Usage")]:
        refused = running.driver.command(LEAD, bad, channel=channel.id)
        assert says in refused.message.text
    outsider = running.driver.command(OUTSIDER, f"correct {wrong} Nope", channel="C0GENERAL")
    assert "incident channel" in outsider.message.text
    assert len(running.timeline(1)) == len(after)


def test_a_timeline_that_slack_will_not_take_is_reported(running):
    channel = declare(running)
    running.sandbox.faults.add({"kind": "error", "method": "files.getUploadURLExternal", "count": None})
    running.core.dispatcher.kinds["upload_timeline"].max_attempts = 2  # give up after two tries, quickly
    answer = running.driver.command(LEAD, "timeline md", channel=channel.id)
    assert "Posting INC-1's timeline" in answer.message.text
    told = wait_for(lambda: ephemerals(running, channel.id, LEAD, "Could not post INC-1's timeline (md)"),
                    timeout=20, what="the failure, told to the one who asked")
    assert "safeguard timeline INC-1 --format md" in told[0].text
    [failed] = [e for e in running.timeline(1) if e["kind"] == "timeline_export_failed"]
    assert failed["actor"] == LEAD and failed["data"]["format"] == "md"
    assert not [m for m in running.ws.messages(channel.id) if m.files]


def test_an_export_whose_answer_was_lost_is_posted_once(running):
    channel = declare(running)
    running.sandbox.faults.lost_answer("files.completeUploadExternal", count=1, status=503)
    assert running.driver.command(LEAD, "timeline md", channel=channel.id).ok
    wait_for(lambda: "timeline_exported" in running.kinds(1), timeout=20, what="the export")
    running.settle()
    assert len([m for m in running.ws.messages(channel.id) if m.files]) == 1


def test_note_and_shortcut_add_a_message_once(running):
    channel = declare(running)

    noted = running.driver.command(LEAD, "note Case CASE-77 moved to the specialist queue", channel=channel.id)
    assert noted.ok and ":memo: Added to INC-1's timeline" in noted.message.text
    assert noted.message.is_ephemeral
    [note] = notes(running)
    assert note["text"] == "Case CASE-77 moved to the specialist queue"
    assert note["actor"] == LEAD and note["data"] == {"via": "command"}
    assert "Usage" in running.driver.command(LEAD, "note   ", channel=channel.id).message.text

    # the message shortcut on a person's message in the incident channel
    posted = running.driver.post_as(SPEC, channel.id, "Hash 9f86d081 matched twice in case CASE-77")
    ts = posted.message.ts
    assert running.driver.shortcut(LEAD, channel.id, ts, "add_to_timeline").ok
    [added] = wait_for(lambda: notes_of(running, ts), what="the shortcut's note")
    assert added["actor"] == LEAD
    assert added["text"] == "Hash 9f86d081 matched twice in case CASE-77"
    assert added["data"]["via"] == "shortcut" and added["data"]["author"] == SPEC
    assert added["data"]["had_files"] == 0 and added["data"]["message_ts"] == ts
    assert added["data"]["permalink"] and ts.replace(".", "") in added["data"]["permalink"]
    wait_for(lambda: ephemerals(running, channel.id, LEAD, f"Added to INC-1's timeline (#{added['seq']})"),
             what="the shortcut's confirmation")

    # the same message again: recorded once, and the person is told where it is
    assert running.driver.shortcut(DEPUTY, channel.id, ts, "add_to_timeline").ok
    wait_for(lambda: ephemerals(running, channel.id, DEPUTY, f"already on INC-1's timeline (#{added['seq']})"),
             what="the 'already there' answer")
    assert len(notes_of(running, ts)) == 1

    # two people adding the same message at the same moment still make one event
    everyone = (LEAD, DEPUTY, SPEC, "U0SPEC002", LEGAL, "U0GC00001")
    for n in range(5):
        ts = running.driver.post_as(LEGAL, channel.id, f"Preservation request {n} drafted").message.ts
        with ThreadPoolExecutor(len(everyone)) as pool:
            answers = list(pool.map(lambda user, ts=ts: running.driver.shortcut(user, channel.id, ts, "add_to_timeline"),
                                    everyone))
        assert all(a.ok for a in answers)
        wait_for(lambda ts=ts: notes_of(running, ts), what="the note")
        running.settle()
        assert len(notes_of(running, ts)) == 1, notes_of(running, ts)
    assert len(notes(running)) == 7
    assert chain.verify(running.timeline(1)).ok


def test_pushpin_reaction_adds_a_message_once(running):
    channel = declare(running)
    running.sandbox.calls.clear()

    first = running.driver.post_as(LEGAL, channel.id, "Preservation request drafted for report 123456").message
    assert running.driver.react(SPEC, channel.id, first.ts, "eyes").ok
    assert running.driver.react(SPEC, channel.id, first.ts, "pushpin").ok
    [pinned] = wait_for(lambda: notes_of(running, first.ts), what="the 📌 note")
    assert pinned["actor"] == SPEC and pinned["data"]["via"] == "reaction"
    assert pinned["data"]["author"] == LEGAL and pinned["data"]["had_files"] == 0
    assert pinned["text"] == "Preservation request drafted for report 123456"
    assert pinned["data"]["permalink"]
    wait_for(lambda: ephemerals(running, channel.id, SPEC, f"Added to INC-1's timeline (#{pinned['seq']})"),
             what="the 📌 confirmation to the one who added it")

    # 📌 again by someone else, or the shortcut on it: still one event
    assert running.driver.react(LEAD, channel.id, first.ts, "pushpin").ok
    assert running.driver.shortcut(LEAD, channel.id, first.ts, "add_to_timeline").ok
    wait_for(lambda: ephemerals(running, channel.id, LEAD, "already on INC-1's timeline"), what="the answer")
    running.sandbox.events.wait()
    assert len(notes_of(running, first.ts)) == 1

    # a 📌 on a message with files: fetched as text and metadata, no file is touched
    bare = running.driver.post_as(SPEC, channel.id, "", files=[{"name": "VID_0099-clip.mp4", "mimetype": "video/mp4"},
                                                                {"name": "IMG_0100.png", "mimetype": "image/png"}])
    assert running.driver.react(LEAD, channel.id, bare.message.ts, "round_pushpin").ok
    [with_files] = wait_for(lambda: notes_of(running, bare.message.ts), what="the 📌 note of the files")
    assert with_files["data"]["had_files"] == 2 and "2 file(s)" in with_files["text"]
    assert with_files["actor"] == LEAD
    assert "VID_0099" not in json.dumps(running.timeline(1))
    assert not [c.method for c in running.sandbox.calls if c.method.startswith("files.")]
    assert len(notes(running)) == 2


def test_pushpin_on_a_thread_reply_adds_it(running):
    channel = declare(running)
    parent = running.driver.post_as(LEGAL, channel.id, "Draft of the preservation request").message
    reply = running.driver.post_as(SPEC, channel.id, "Hash list attached to CASE-12", thread_ts=parent.ts).message
    assert running.driver.react(LEAD, channel.id, reply.ts, "pushpin").ok
    running.sandbox.events.wait()
    [note] = wait_for(lambda: notes_of(running, reply.ts), timeout=3, what="the 📌 note of the reply")
    assert note["text"] == "Hash list attached to CASE-12" and note["data"]["author"] == SPEC


def test_a_message_with_a_file_records_that_it_had_one_and_nothing_is_downloaded(running, db_url):
    channel = declare(running)
    running.sandbox.calls.clear()
    files = [{"name": "IMG_4471-upload.jpg", "mimetype": "image/jpeg", "size": 248_113}]
    with_text = running.driver.post_as(SPEC, channel.id, "Upload from case CASE-12", files=files).message
    file_id = with_text.files[0]["id"]
    bare = running.driver.post_as(SPEC, channel.id, "", files=[{"name": "VID_0099-clip.mp4", "mimetype": "video/mp4"},
                                                                {"name": "IMG_0100.png", "mimetype": "image/png"}]).message

    assert running.driver.shortcut(LEAD, channel.id, with_text.ts, "add_to_timeline").ok
    assert running.driver.shortcut(LEGAL, channel.id, bare.ts, "add_to_timeline").ok
    [by_shortcut] = wait_for(lambda: notes_of(running, with_text.ts), what="the shortcut's note")
    [by_pin] = wait_for(lambda: notes_of(running, bare.ts), what="the second note")

    assert by_shortcut["data"]["had_files"] == 1 and by_shortcut["data"]["author"] == SPEC
    assert by_shortcut["text"].startswith("Upload from case CASE-12\n")
    assert "file" in by_shortcut["text"] and "not copied" in by_shortcut["text"]
    assert by_pin["data"]["had_files"] == 2 and "2 file(s)" in by_pin["text"]

    # nothing about the files was fetched, downloaded or uploaded
    methods = [c.method for c in running.sandbox.calls]
    assert not [m for m in methods if m.startswith("files.")], methods
    assert not running.ws.files
    # and nothing naming them is kept: not the names, the types, the sizes or Slack's file ids
    stored = database_dump(db_url)
    for leak in ("IMG_4471", "VID_0099", "IMG_0100", "image/jpeg", "video/mp4", "248113", file_id):
        assert leak not in stored, leak


def test_messages_outside_incident_channels_are_refused(running):
    channel = declare(running)
    before = running.timeline(1)

    general = running.driver.post_as(LEAD, "C0GENERAL", "Lunch at noon?").message
    assert running.driver.shortcut(LEAD, "C0GENERAL", general.ts, "add_to_timeline").ok
    wait_for(lambda: ephemerals(running, "C0GENERAL", LEAD, "Only messages in an incident channel"),
             what="the refusal")
    assert running.driver.react(LEAD, "C0GENERAL", general.ts, "pushpin").ok
    running.sandbox.events.wait()
    note = running.driver.command(LEAD, "note Not an incident channel", channel="C0GENERAL")
    assert "incident channel" in note.message.text

    # someone outside the incident channel cannot even reach its messages
    with pytest.raises(ValueError, match="not in"):
        running.driver.shortcut(OUTSIDER, channel.id, general.ts, "add_to_timeline")
    running.settle()
    assert running.timeline(1) == before
    assert not notes(running)


# --------------------------------------------------------------------------- exports to the channel


def uploaded(running, name: str):
    return wait_for(lambda: next((f for f in running.ws.files.values() if f.name == name and f.completed), None),
                    what=f"the upload of {name}")


def test_timeline_command_uploads_md_json_and_csv_files(running):
    channel = declare(running)
    tricky = 'Report "123456" filed, =cmd|\'/C calc\'!A0, <b>bold</b> | pipe [x](http://evil.example) `code`'
    assert running.driver.command(SPEC, f"note {tricky}", channel=channel.id).ok

    for fmt in ("json", "csv", "md", "html"):
        answer = running.driver.command(LEAD, f"timeline {fmt}", channel=channel.id)
        assert answer.ok and f"INC-1's timeline ({fmt})" in answer.message.text
        assert answer.message.is_ephemeral
        running.settle()
    bad = running.driver.command(LEAD, "timeline pdf", channel=channel.id)
    assert "Formats: md, html, json, csv" in bad.message.text

    # each went up through the v2 flow, into the incident channel
    assert len(running.sandbox.calls_of("files.getUploadURLExternal")) == 4
    assert len([c for c in running.sandbox.calls_of("files.completeUploadExternal") if c.ok]) == 4
    posted = [m for m in running.ws.messages(channel.id) if m.files]
    assert sorted(f["name"] for m in posted for f in m.files) == [
        "INC-1-review.html", "INC-1-review.md", "INC-1-timeline.csv", "INC-1-timeline.json"]
    page = uploaded(running, "INC-1-review.html").data.decode("utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<b>bold</b>" not in page  # user text escaped

    # JSON: the contract, a verifiable chain, the same events as the database at that moment
    timeline = json.loads(uploaded(running, "INC-1-timeline.json").data)
    assert isinstance(timeline, list) and timeline
    for event in timeline:
        assert list(event) == CONTRACT_KEYS
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", event["at"])
        assert isinstance(event["data"], dict)
    assert [e["seq"] for e in timeline] == list(range(1, len(timeline) + 1))
    assert chain.verify(timeline).ok
    stored = running.timeline(1)
    assert timeline == stored[:len(timeline)]
    assert any(e["kind"] == "note" and e["text"] == tricky for e in timeline)
    [json_post] = [m for m in posted if m.files[0]["name"] == "INC-1-timeline.json"]
    assert f"Timeline anchor: `{chain.anchor(timeline[-1])}`" in json_post.text  # kept outside the database

    # CSV: opens with the csv module, same columns, same events, formulas defused
    text = uploaded(running, "INC-1-timeline.csv").data.decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == CONTRACT_KEYS
    assert [int(r[0]) for r in rows[1:]] == list(range(1, len(rows)))
    assert all(len(r) == len(CONTRACT_KEYS) for r in rows)
    assert not any(cell.startswith(("=", "+", "@")) for row in rows[1:] for cell in row)
    parsed = export.parse_csv(text)
    assert parsed == stored[:len(parsed)] and chain.verify(parsed).ok
    assert len(parsed) > len(timeline)  # the JSON upload is on the timeline by then

    # Markdown: the post-incident review with every section, user text escaped
    review = uploaded(running, "INC-1-review.md").data.decode("utf-8")
    assert review.startswith("# INC-1: ")
    positions = [review.index(section) for section in REVIEW_SECTIONS]
    assert positions == sorted(positions)
    assert "Hash chain verified" in review
    assert "contains no content and no identifying descriptions" in review
    assert "Confirmed CSAM report (csam-report)" in review and "sev1" in review
    assert "<b>" not in review and "](http" not in review and "hxxp://evil.example" in review

    exported = [e for e in running.timeline(1) if e["kind"] == "timeline_exported"]
    assert [e["data"]["format"] for e in exported] == ["json", "csv", "md", "html"]
    assert all(e["actor"] == LEAD for e in exported)
    assert chain.verify(running.timeline(1)).ok


# --------------------------------------------------------------------------- the legal-clock table


T_DECLARE = "2025-03-03 09:00:00"


def legal_clock_rows(review_md: str) -> dict[tuple[str, str], list[str]]:
    """The legal-clock table of a Markdown review: (clock, trigger) → cells."""
    section = review_md.split("## Legal clocks", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith("| Clock ") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        rows[(cells[0], cells[1])] = cells
    return rows


def test_legal_clock_table_of_a_worked_csam_report(sandbox, db_url):
    with freeze_time(T_DECLARE) as frozen:
        handle = make_bot(sandbox, db_url, start_scheduler=False)
        core = handle.core
        core.dispatcher.inline = True
        drive = handle.driver

        def at(when: str) -> None:
            frozen.move_to(when)
            core.dispatcher.tick()
            sandbox.events.wait()

        def until(predicate, what: str):
            # frozen time stands still: count real sleeps, not monotonic seconds
            for _ in range(500):
                if value := predicate():
                    return value
                core.dispatcher.tick()
                time.sleep(0.02)
            raise AssertionError(f"timed out waiting for {what}")

        def run(user: str, text: str, channel: str) -> None:
            result = drive.command(user, text, channel=channel)
            assert result.ok, result
            core.dispatcher.tick()
            sandbox.events.wait()

        def provisioned() -> bool:
            with core.db.read() as session:
                incident = session.get(Incident, 1)
                return incident is not None and incident.provisioned_at is not None

        try:
            run(LEAD, "declare csam-report Hash match on upload 8812", "C0OPS0001")
            until(provisioned, "INC-1 to be set up in Slack")
            channel = sandbox.state.channel_by_name("inc-1-csam-report")
            assert channel is not None and sandbox.state.pins(channel.id)
            assert {LEAD, SPEC, LEGAL} <= set(sandbox.state.members(channel.id))
            sandbox.events.wait()

            at("2025-03-03 09:40:00")  # the confirm step's 1h reminder is not due yet
            run(SPEC, "done confirm case_id=CASE-881 category=A1 human_viewed=all", channel.id)   # T0
            at("2025-03-03 10:20:00")
            run(SPEC, "done remove account_action=banned content_count=3", channel.id)             # on time
            at("2025-03-03 13:35:00")  # the 4h CyberTipline reminder fires at 13:40
            at("2025-03-03 13:45:00")
            run(LEAD, "page legal Please review the CyberTipline draft", channel.id)
            at("2025-03-03 13:52:30")
            run(LEGAL, "ack", channel.id)                                                          # 7m 30s to ack
            overdue_md = export.render(build_review(core, 1), "md")  # 13:52:30, the report not filed yet
            at("2025-03-03 15:10:00")
            run(LEAD, "done ncmec-report report_id=123456", channel.id)                            # 1h 30m late
            at("2025-03-04 08:00:00")
            run(LEGAL, "done preservation-hold hold_ref=HOLD-9", channel.id)
            run(SPEC, "skip hash-share Hashes already in the industry list under CASE-881", channel.id)
            at("2025-03-04 12:00:00")
            run(LEAD, "resolve Reported to NCMEC (123456); account banned; hold in place", channel.id)
            review_md = export.render(build_review(core, 1), "md")
            verdict = chain.verify(handle.timeline(1))
        finally:
            handle.server.stop()

    assert verdict.ok
    # while the report was not filed, its clock showed how overdue it was
    overdue = legal_clock_rows(overdue_md)[("File the CyberTipline report and log its ID", "remind owner")]
    assert overdue[4] == "2025-03-03 13:40:00 UTC" and overdue[5] == "—"
    assert overdue[6] == "not met: overdue by 12m 30s at 2025-03-03 13:52:30 UTC"
    assert legal_clock_rows(overdue_md)[("File the CyberTipline report and log its ID", "page legal")][6] == "pending"

    rows = legal_clock_rows(review_md)
    legal = review_md.split("## Legal clocks", 1)[1].split("\n## ", 1)[0]
    assert "- Declared: 2025-03-03 09:00:00 UTC.\n- T0 (a person confirmed the case): 2025-03-03 09:40:00 UTC." in legal
    assert "| Declared | 2025-03-03 09:00:00 UTC by Ana |" in review_md
    assert "| Confirmed (T0) | 2025-03-03 09:40:00 UTC |" in review_md

    confirm = rows[("Specialist confirms and classifies the material", "remind owner")]
    assert confirm[4] == "2025-03-03 10:00:00 UTC"  # 1h after declaration
    assert confirm[6] == "met on time (20m 00s to spare)"

    remove = rows[("Remove the content and action the account", "remind owner")]
    assert remove[3] == "Specialist confirms and classifies the material"  # from T0
    assert remove[4] == "2025-03-03 10:40:00 UTC" and remove[5] == "2025-03-03 10:20:00 UTC"
    assert remove[6] == "met on time (20m 00s to spare)"

    remind = rows[("File the CyberTipline report and log its ID", "remind owner")]
    assert remind[2].startswith("law: 18 U.S.C. 2258A")
    assert remind[4] == "2025-03-03 13:40:00 UTC" and remind[5] == "2025-03-03 15:10:00 UTC"
    assert remind[6] == "met 1h 30m late"
    assert remind[7] == "123456"
    assert remind[8] == "2025-03-03 15:10:00 UTC" and remind[9] == "2026-03-03 15:10:00 UTC"

    page = rows[("File the CyberTipline report and log its ID", "page legal")]
    assert page[4] == "2025-03-04 09:40:00 UTC"
    assert page[6] == "met on time (18h 30m to spare)"

    hold = rows[("Start the preservation hold for the report", "remind owner")]
    assert hold[3] == "File the CyberTipline report and log its ID"  # from the report
    assert hold[4] == "2025-03-04 15:10:00 UTC" and hold[6].startswith("met on time")

    review_clock = rows[("Legal reviews the preservation hold before it lapses", "remind legal")]
    assert review_clock[4] == "2026-01-27 15:10:00 UTC"  # day 330 after the report
    assert review_clock[6] == "pending"

    share = rows[("Share the hashes with industry hash-sharing programmes", "remind owner")]
    assert share[6] == "cancelled (step skipped)"

    assert ("- Report 123456 (File the CyberTipline report and log its ID, report\\_id): logged "
            "2025-03-03 15:10:00 UTC, 5h 30m after T0; preserve from 2025-03-03 15:10:00 UTC until "
            "2026-03-03 15:10:00 UTC.") in review_md

    pages = review_md.split("## Pages", 1)[1].split("\n## ", 1)[0]
    page_row = next(line for line in pages.splitlines() if line.startswith("| Legal on-call"))
    assert "Please review the CyberTipline draft" in page_row
    assert "2025-03-03 13:45:00 UTC" in page_row and "| Lena |" in page_row and "| 7m 30s |" in page_row

    skipped = review_md.split("## Skipped steps and why", 1)[1].split("\n## ", 1)[0]
    assert "Hashes already in the industry list under CASE-881" in skipped

    # Slack markup in event texts reads as Slack shows it: names and dates, not ids and epochs
    timeline = review_md.split("## Timeline", 1)[1].split("\n## ", 1)[0]
    assert "| member\\_invited | system | Invited @Chloe |" in timeline
    assert "| page\\_acked | Lena | @Lena acknowledged the page for Legal on-call (level 1) |" in timeline
    assert "due 2025-03-03 13:40 UTC |" in timeline
    assert "&lt;@" not in review_md and "date^" not in review_md

    assert "- Clocks met late: 1" in review_md
    assert "- T0 to first report: 5h 30m" in review_md
    assert "- Declaration to confirmation (T0): 40m 00s" in review_md
    assert "Due by 2025-03-07 12:00:00 UTC" in review_md  # sev1: review meeting within 3 days

