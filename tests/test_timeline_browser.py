"""The timeline page in a real headless Chromium (Debian's package, driven by Playwright): a
channel member's link from `/incident timeline html` renders the review with user text shown as
text, and links that are expired, forged or for another incident are refused."""

from __future__ import annotations

import json
import os
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest

from bot.clocks.now import utcnow
from bot.timeline import links
from tests.support import wait_for

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LEAD, SPEC, LEGAL, OUTSIDER = "U0LEAD001", "U0SPEC001", "U0LEGAL01", "U0OUTSID1"
SECRET = b"test-signing-secret"  # the bot signs links with its signing secret when no link secret is set
NOTE = "<script>alert(1)</script> and <img src=x onerror=alert(2)> logged for CASE-5"


def _unavailable() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium; run.py does it in CI)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _unavailable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}, and CI is set: the browser test must run here")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(java_script_enabled=True)
    page = context.new_page()
    page.dialogs, page.requests, page.errors = [], [], []

    def on_dialog(dialog) -> None:
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("request", lambda request: page.requests.append(request.url))
    page.on("console", lambda message: message.type == "error" and page.errors.append(message.text))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()


def declare(running, number: int, summary: str):
    assert running.driver.command(LEAD, f"declare csam-report {summary}").ok
    channel = running.provisioned(number)
    assert channel.name == f"inc-{number}-csam-report"
    running.settle()
    return channel


def link_from_bot(running, user: str, channel) -> str:
    answer = running.driver.command(user, "timeline html", channel=channel.id)
    assert answer.ok and answer.message is not None
    assert answer.message.is_ephemeral and answer.message.ephemeral_to == user
    assert "valid for one hour" in answer.message.text
    match = re.search(r"<(http[^|>]+)\|", answer.message.text)
    assert match, answer.message.text
    return match.group(1)


def token_of(url: str) -> str:
    return url.split(f"?{links.TOKEN_PARAM}=", 1)[1]


def test_a_channel_members_link_renders_the_timeline(running, page):
    channel = declare(running, 1, "Hash match on upload 8812")
    assert running.driver.command(SPEC, f"note {NOTE}", channel=channel.id).ok
    assert running.driver.command(SPEC, "done confirm case_id=CASE-5 category=A1 human_viewed=all",
                                  channel=channel.id).ok
    running.settle()

    url = link_from_bot(running, LEGAL, channel)
    # the bot knows where it listens (port 0 here), and the link is one hour long
    assert url.startswith(f"{running.server.url}/incidents/1?{links.TOKEN_PARAM}=v2.1.")
    assert token_of(url).split(".")[3] == LEGAL  # the link is personal
    assert abs(int(token_of(url).split(".")[2]) - (time.time() + 3600)) < 60
    # the link went to the person who asked, not into the channel
    assert not [m for m in running.ws.messages(channel.id) if url in (m.text or "")]
    assert "timeline_link" in running.kinds(1)
    running.settle()  # the html file is posted too
    assert token_of(url) not in json.dumps(running.timeline(1))  # the token is a credential: never stored
    events = running.timeline(1)

    response = page.goto(url)
    assert response is not None and response.status == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert page.title() == "INC-1: post-incident review"

    body = page.inner_text("body")
    for text in ("INC-1: Hash match on upload 8812", "Confirmed CSAM report (csam-report)", "Summary",
                 "Responders and roles", "Checklist", "Timeline", "Legal clocks", "Pages",
                 "Skipped steps and why", "Action items", "Review meeting",
                 f"Hash chain verified: {len(events)} events", "contains no content"):
        assert text in body, text
    assert "<@" not in body and "Chloe" in body  # Slack markup reads as names
    assert page.locator("#timeline tbody tr").count() == len(events)
    # the bot's bookkeeping is folded: invitations, clocks, the link itself
    assert page.locator("#timeline details.system").count() == 1
    assert not page.locator("#timeline details.system").evaluate("d => d.open")
    assert "Invited @Chloe" not in body
    page.locator("#timeline details.system summary").click()
    assert "Invited @Chloe" in page.inner_text("body")
    assert page.locator(f"#e{events[-1]['seq']}").is_visible()

    # the note is shown as the text it is: nothing ran, nothing was loaded
    cell = page.locator("#timeline td.text", has_text="alert(1)")
    assert cell.count() == 1 and cell.inner_text() == NOTE
    assert page.locator("script").count() == 0
    assert page.locator("img").count() == 0
    page.wait_for_timeout(200)
    assert page.dialogs == []
    # one request, for the page itself: nothing external, no favicon, no CSP violations
    assert page.requests == [url]
    assert page.errors == []

    # the T0 clock is on the page with its due time
    legal = page.inner_text("#legal-clocks")
    assert "T0 (a person confirmed the case)" in legal
    assert "File the CyberTipline report and log its ID" in legal


def test_expired_forged_and_other_incidents_links_are_refused(running, page):
    first = declare(running, 1, "Hash match on upload 8812")
    second = declare(running, 2, "Sextortion report 4411")
    url1 = link_from_bot(running, LEAD, first)
    url2 = link_from_bot(running, SPEC, second)
    base = running.server.url
    token1, token2 = token_of(url1), token_of(url2)
    version, number, expires, holder, signature = token1.split(".")

    def refused(url: str, reason: str) -> None:
        response = page.goto(url)
        assert response is not None and response.status == 403, (url, response and response.status)
        text = page.inner_text("body")
        assert f"This link is not valid ({reason})" in text, text
        assert "Hash match" not in text and "Sextortion" not in text

    # the genuine links work, each for its own incident
    assert page.goto(url1).status == 200 and "Hash match on upload 8812" in page.inner_text("h1")
    assert page.goto(url2).status == 200 and "Sextortion report 4411" in page.inner_text("h1")

    # expired: signed with the bot's secret, but the hour is over
    expired = links.sign_link(SECRET, 1, utcnow() - timedelta(seconds=1), LEAD)
    refused(f"{base}/incidents/1?token={expired}", "expired")
    an_hour_ago = links.sign_link(SECRET, 1, links.default_expiry(utcnow() - timedelta(hours=1, minutes=1)), LEAD)
    refused(f"{base}/incidents/1?token={an_hour_ago}", "expired")

    # forged: a changed signature, a longer life without the secret, another secret
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    refused(f"{base}/incidents/1?token={version}.{number}.{expires}.{holder}.{flipped}", "forged")
    refused(f"{base}/incidents/1?token={version}.{number}.{int(expires) + 86400}.{holder}.{signature}", "forged")
    refused(f"{base}/incidents/1?token={version}.{number}.{expires}.{OUTSIDER}.{signature}", "forged")
    other_secret = links.sign_link(b"not-the-bot-secret", 1, utcnow() + timedelta(hours=1), LEAD)
    refused(f"{base}/incidents/1?token={other_secret}", "forged")
    refused(f"{base}/incidents/1?token={version}.2.{expires}.{holder}.{signature}", "forged")
    # a link without a holder (the old kind) is no longer accepted
    refused(f"{base}/incidents/1?token={links.sign_link(SECRET, 1, utcnow() + timedelta(hours=1))}", "expired")

    # for another incident: each genuine link opens only its own incident
    refused(f"{base}/incidents/2?token={token1}", "wrong incident")
    refused(f"{base}/incidents/1?token={token2}", "wrong incident")

    # no token, or rubbish
    refused(f"{base}/incidents/1", "malformed")
    refused(f"{base}/incidents/1?token=%3Cscript%3E", "malformed")

    # a valid link to an incident that does not exist is a plain 404, not a server error
    ghost = links.sign_link(SECRET, 99, utcnow() + timedelta(hours=1), LEAD)
    assert page.goto(f"{base}/incidents/99?token={ghost}").status == 404
    assert page.dialogs == []

    # someone outside the incident channel cannot get a link at all
    with pytest.raises(ValueError, match="not in"):
        running.driver.command(OUTSIDER, "timeline html", channel=first.id)
    elsewhere = running.driver.command(OUTSIDER, "timeline html", channel="C0GENERAL")
    assert "incident channel" in elsewhere.message.text and "token=" not in elsewhere.message.text


def test_a_link_stops_working_for_someone_removed_from_the_channel(running, page):
    channel = declare(running, 1, "Hash match on upload 8812")
    url = link_from_bot(running, SPEC, channel)
    assert page.goto(url).status == 200
    assert running.driver.leave(SPEC, channel.id).ok
    wait_for(lambda: "member_left" in running.kinds(1), what="the bot to hear the removal")
    response = page.goto(url)
    assert response.status == 403 and "may no longer see INC-1" in page.inner_text("body")
    assert "Hash match" not in page.inner_text("body")


ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # layout, not database behaviour
def test_the_review_page_reads_well_on_a_phone_and_a_wide_screen(running, browser):
    """No horizontal scroll at 390 px and 1,400 px; times in the reader's Slack zone (UTC on
    hover); names, role labels and #channel instead of ids; notes and 📌 messages told apart.
    Screenshots are kept in tests/artifacts/ (git-ignored)."""
    channel = declare(running, 1, "Hash match on upload 8812 " + "with-a-very-long-unbroken-reference-" * 4)
    assert running.driver.command(SPEC, "note Reviewed CASE-5 " + "x" * 300, channel=channel.id).ok
    posted = running.driver.post_as(LEAD, channel.id, "NCMEC portal is slow tonight")
    assert running.driver.react(SPEC, channel.id, posted.message.ts, "pushpin").ok
    assert running.driver.command(SPEC, "done confirm case_id=CASE-5 category=A1 human_viewed=all",
                                  channel=channel.id).ok
    assert running.driver.command(LEAD, "page legal Need a decision on CASE-5", channel=channel.id).ok
    wait_for(lambda: "note" in running.kinds(1) and running.kinds(1).count("note") == 2, what="the 📌 message")
    running.settle()
    url = link_from_bot(running, LEGAL, channel)  # Lena reads it: America/New_York in the sandbox

    ARTIFACTS.mkdir(exist_ok=True)
    for width, height in ((390, 844), (1400, 900)):
        context = browser.new_context(viewport={"width": width, "height": height}, java_script_enabled=True)
        try:
            page = context.new_page()
            assert page.goto(url).status == 200
            page.locator("#timeline details.system summary").click()  # the widest content, shown
            scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            shot = ARTIFACTS / f"review-{width}px.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot} (page {scroll} px wide in a {inner} px window)")
            assert scroll <= inner, f"{scroll} px wide in a {inner} px window (see {shot})"
            if width == 1400:
                read_the_wide_page(page, channel)
        finally:
            context.close()


def read_the_wide_page(page, channel) -> None:
    body = page.inner_text("body")
    assert "Times are in America/New_York (your Slack time zone)" in body
    first = page.locator("#timeline time").first
    assert first.get_attribute("datetime").endswith("Z")
    assert first.get_attribute("title").endswith(" UTC")
    assert first.inner_text().endswith((" EST", " EDT"))
    summary = page.inner_text("#summary")
    assert "#inc-1-csam-report" in summary and channel.id not in summary
    checklist = page.inner_text("#checklist")
    assert "child_safety_specialist" not in checklist and "Child-safety specialist" in checklist  # the config's label
    message = page.locator("#timeline tr.message")
    assert message.count() == 1 and "NCMEC portal is slow tonight" in message.inner_text()
    assert "message added" in message.inner_text() and "with a 📌 reaction" in message.inner_text()
    assert "Ana" in message.inner_text()  # its author, by name
    note = page.locator("#timeline tr.note")
    assert note.count() == 1 and "Reviewed CASE-5" in note.inner_text()
    assert page.locator("script").count() == 0
