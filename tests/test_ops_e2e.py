"""The operations view end to end, on one bot shared by the module (SQLite, through the sandbox):
the incidents of tests/report_support.py are made through the core first, then the bot starts on
that database. A lead gets a signed link to /reports from Slack and Chromium renders the report
with its charts; forged, expired, widened and non-lead links are refused; /metrics is parsed with
prometheus_client's own parser and its histograms move; the Home tab is published when opened
and after a page, and its Acknowledge button works."""

from __future__ import annotations

import re
import shutil
import urllib.request
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from bot.clocks.now import utcnow
from bot.db.models import Incident, Page
from bot.reports.period import Period
from bot.reports.service import scope
from bot.timeline import links
from tests.conftest import make_bot
from tests.report_support import LEAD, LEGAL, SPEC, build_core, make_incidents, make_october
from tests.support import wait_for
from tests.test_timeline_browser import browser, page  # noqa: F401 (the shared Chromium fixtures)

pytestmark = pytest.mark.e2e
SECRET = b"test-signing-secret"
NOVEMBER = Period.__new__(Period)


@pytest.fixture(scope="module")
def ops(tmp_path_factory, _migrated_sqlite):
    from sandbox.server import Sandbox

    path = tmp_path_factory.mktemp("ops") / "ops.db"
    shutil.copyfile(_migrated_sqlite, path)
    url = f"sqlite:///{path}"
    core = build_core(url)
    make_incidents(core)
    make_october(core)
    core.db.dispose()
    with Sandbox(signing_secret="test-signing-secret") as box:
        running = make_bot(box, url)
        try:
            running.settle(30)  # the Slack side of the incidents made without Slack, and their due clocks
            yield running
        finally:
            running.server.stop()


def report_link(running, user: str, text: str = "report 2026-11-01 2026-11-30"):
    answer = running.driver.command(user, text)
    assert answer.ok and answer.message is not None and answer.message.is_ephemeral
    return answer.message.text


def scrape(running) -> dict[str, dict[tuple, float]]:
    with urllib.request.urlopen(f"{running.server.url}/metrics", timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    assert not re.search(r'="U0[A-Z0-9]+"', text)  # no user id in any label
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def total(samples, name: str, **labels) -> float:
    return sum(v for k, v in samples.get(name, {}).items() if set(labels.items()) <= set(k))


def test_a_leads_report_link_renders_with_its_charts_and_others_are_refused(ops, page):  # noqa: F811
    assert "`report [FROM] [TO] [PLAYBOOK]`" in report_link(ops, LEAD, "help")
    refused = report_link(ops, SPEC)
    assert "Only the incident leads" in refused and "token=" not in refused
    text = report_link(ops, LEAD)
    assert "valid for one hour" in text
    url = re.search(r"<(http[^|>]+)\|", text).group(1)
    assert url.startswith(f"{ops.server.url}/reports?from=2026-11-01&to=2026-11-30&token=r1.")

    response = page.goto(url)
    assert response.status == 200
    assert response.headers["cache-control"] == "no-store" and response.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert page.title() == "Safeguard report 2026-11-01 to 2026-11-30"
    assert page.inner_text("#incident-count") == "4"
    assert "csam-report\tdeclaration\tT0\t3\t30m 00s\t2h 00m\t2h 00m" in page.inner_text("#timings")
    assert "csam-report\tT0\tncmec-report\t2\t2h 00m\t6h 00m\t6h 00m" in page.inner_text("#timings")
    assert page.inner_text("#skips").endswith("INC-2")
    assert [r.split("\t")[0] for r in page.inner_text("#holds").splitlines()[1:]] == ["INC-5", "INC-1", "INC-2"]
    # the charts are drawn: two reports in the filing chart, one on each side of the 4h deadline
    bars = page.locator(".filing-chart rect.bar")
    counts = [int(bars.nth(i).get_attribute("data-count")) for i in range(bars.count())]
    assert sum(counts) == 2
    assert page.locator(".filing-chart rect.bar-ok[data-count='1']").count() == 1
    assert page.locator(".filing-chart rect.bar-late[data-count='1']").count() == 1
    assert page.locator(".filing-chart line.deadline").count() == 2
    tall = page.locator(".filing-chart rect.bar-ok[data-count='1']").bounding_box()
    assert tall is not None and tall["height"] > 50  # really rendered, not only in the markup
    assert page.locator(".ack-chart rect.bar-p90").count() >= 1
    assert page.locator(".ack-chart rect.bar-p90").first.bounding_box()["width"] > 0
    assert page.locator("script").count() == 0
    assert page.requests == [url] and page.errors == []

    base, token = f"{ops.server.url}/reports", url.split("token=", 1)[1]

    def refused_page(link: str, status: int, words: str) -> None:
        response = page.goto(link)
        assert response.status == status, (link, response.status)
        assert words in page.inner_text("body")
        assert "csam-report" not in page.inner_text("body")

    expires, holder, signature = token.split(".")[1:]
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    refused_page(f"{base}?from=2026-11-01&to=2026-11-30&token=r1.{expires}.{holder}.{flipped}", 403, "(forged)")
    refused_page(f"{base}?from=2026-01-01&to=2026-11-30&token={token}", 403, "(forged)")  # a wider period
    refused_page(f"{base}?from=2026-11-01&to=2026-11-30&playbook=csam-report&token={token}", 403, "(forged)")
    refused_page(f"{base}?from=2026-11-01&to=2026-11-30&token=r1.{int(expires) + 86400}.{holder}.{signature}",
                 403, "(forged)")
    november = "2026-11-01|2026-11-30|"
    expired = links.sign_report_link(SECRET, november, utcnow() - timedelta(seconds=1), LEAD)
    refused_page(f"{base}?from=2026-11-01&to=2026-11-30&token={expired}", 403, "(expired)")
    not_a_lead = links.sign_report_link(SECRET, november, utcnow() + timedelta(hours=1), SPEC)
    refused_page(f"{base}?from=2026-11-01&to=2026-11-30&token={not_a_lead}", 403, "no longer read reports")
    refused_page(f"{base}?from=2026-11-01&to=2026-11-30", 403, "(malformed)")
    refused_page(f"{base}?from=2026-11-31&token={token}", 400, "is not a date")
    assert scope(Period(__import__("datetime").date(2026, 11, 1), __import__("datetime").date(2026, 11, 30)),
                 None) == november


def test_metrics_are_prometheus_and_move_after_a_declaration(ops):
    before = scrape(ops)
    for name in ("safeguard_ack_seconds_count", "safeguard_slack_call_seconds_count",
                 "safeguard_outbox_lag_seconds_count", "safeguard_timer_lateness_seconds_count",
                 "safeguard_incidents", "safeguard_timers", "safeguard_tasks", "safeguard_pages",
                 "safeguard_database_up"):
        assert name in before, name
    assert total(before, "safeguard_incidents", status="closed") == 1
    assert total(before, "safeguard_timer_lateness_seconds_count", clock="internal") >= 1  # fired at start

    with ops.core.db.read() as session:
        number = session.scalar(select(func.max(Incident.id))) + 1
    assert ops.driver.command(LEAD, "declare csam-report Hash match on upload 9911").ok
    channel = ops.provisioned(number)
    assert ops.driver.command(LEAD, "page legal now please", channel=channel.id).ok
    ops.settle()
    assert ops.driver.command(LEGAL, "ack", channel=channel.id).ok
    ops.driver.command(SPEC, "report")  # refused: counted
    ops.settle()

    after = scrape(ops)
    assert total(after, "safeguard_ack_seconds_count", kind="command") >= \
        total(before, "safeguard_ack_seconds_count", kind="command") + 4
    assert total(after, "safeguard_slack_call_seconds_count", method="conversations.create") >= \
        total(before, "safeguard_slack_call_seconds_count", method="conversations.create") + 1
    assert total(after, "safeguard_outbox_lag_seconds_count", kind="provision") > \
        total(before, "safeguard_outbox_lag_seconds_count", kind="provision")
    assert total(after, "safeguard_page_ack_seconds_count", role="legal") == \
        total(before, "safeguard_page_ack_seconds_count", role="legal") + 1
    assert total(after, "safeguard_page_deliveries_total", backend="slack", outcome="sent") >= 1
    assert total(after, "safeguard_forbidden_actions_total", action="report") >= 1
    assert total(after, "safeguard_incidents", status="open") == total(before, "safeguard_incidents", status="open") + 1
    assert after["safeguard_ack_seconds_bucket"]  # a real histogram: buckets, sum and count


def test_the_home_tab_is_published_when_opened_and_after_a_page(ops):
    assert ops.driver.open_home(LEGAL).ok
    home = wait_for(lambda: ops.driver.home(LEGAL), what="LEGAL's Home tab")
    text = str(home.blocks)
    assert "Your open incidents" in text and "Declare an incident" in text
    assert "INC-1" in text and "Your viewing today" not in text  # Legal views no content
    assert ops.driver.open_home(SPEC).ok
    spec_home = wait_for(lambda: ops.driver.home(SPEC), what="SPEC's Home tab")
    assert "Your viewing today (only you see this)" in str(spec_home.blocks)

    with ops.core.db.read() as session:
        number = session.scalar(select(func.max(Incident.id))) + 1
    assert ops.driver.command(LEAD, "declare csam-report Hash match on upload 9912").ok
    channel = ops.provisioned(number)
    assert ops.driver.command(LEAD, "page legal look at this", channel=channel.id).ok
    ops.settle()

    def paged():
        view = ops.driver.home(LEGAL)
        return view if "Acknowledge" in str(view.blocks) and f"INC-{number}" in str(view.blocks) else None

    wait_for(paged, timeout=15, what="the page on LEGAL's Home tab")
    with ops.core.db.read() as session:
        page_id = session.scalar(select(Page.id).where(Page.incident_id == number))
    assert ops.driver.click_home(LEGAL, "page_ack", block_id=f"page_{page_id}").ok
    ops.settle()
    wait_for(lambda: f"page_{page_id}" not in str(ops.driver.home(LEGAL).blocks), timeout=15,
             what="the acknowledged page to leave the Home tab")
    assert "page_acked" in ops.kinds(number)

    # the Declare button opens the declare modal
    assert ops.driver.click_home(LEGAL, "home_declare").ok
    stack = wait_for(lambda: ops.ws.view_stacks.get(LEGAL), what="the declare modal")
    assert ops.ws.views[stack[-1]].callback_id == "declare"
