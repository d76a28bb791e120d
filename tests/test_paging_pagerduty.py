"""PagerDuty backend against the local Events API v2 stand-in, over real HTTP."""

from __future__ import annotations

import json

import httpx
import pytest

from bot.paging.base import Backend, DeliveryError
from bot.paging.pagerduty import PagerDutyBackend, pagerduty_severity
from bot.paging.render import PageRenderer
from sandbox.pagerduty import PagerDutyStandIn, validate_event
from tests.paging_support import SECRET_TITLE, notice

KEY = "R0UT1NGKEY0123456789abcdefABCDEF"
assert len(KEY) == 32





@pytest.fixture
def pd():
    with PagerDutyStandIn() as server:
        yield server


@pytest.fixture
def backend(pd):
    with PagerDutyBackend(pd.url, KEY, timeout=5.0) as b:
        yield b


def test_is_a_backend(backend):
    assert isinstance(backend, Backend)
    assert backend.name == "pagerduty"
    assert KEY not in repr(backend)


def test_trigger_event_shape(pd, backend):
    backend.send(notice())
    assert pd.incidents == {"safeguard-page-7": "triggered"}
    [event] = pd.events
    assert event["routing_key"] == KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == "safeguard-page-7"
    payload = event["payload"]
    assert payload["source"] == "safeguard"
    assert payload["severity"] == "critical"
    assert payload["component"] == "legal"
    assert payload["group"] == "INC-7"
    assert payload["class"] == "Confirmed CSAM report"
    assert payload["custom_details"] == {
        "incident": "INC-7",
        "role": "Legal on-call",
        "level": 2,
        "reason": "NCMEC report not filed 24h after confirmation",
    }
    summary = payload["summary"]
    for part in ("INC-7", "Confirmed CSAM report", "Legal on-call", "level 2", "SEV1"):
        assert part in summary
    assert event["links"] == [
        {"href": "https://example.slack.com/archives/C0INC7", "text": "Slack channel of INC-7"}
    ]


def test_page_carries_no_content_or_identifiers(pd, backend):
    backend.send(notice())
    raw = json.dumps(pd.events)
    assert SECRET_TITLE not in raw
    assert "kid_1234" not in raw
    assert "U0LEGAL01" not in raw
    assert "legal@example.org" not in raw


def test_no_link_without_channel(pd, backend):
    backend.send(notice(channel_id=None, channel_link=None))
    assert "links" not in pd.events[0]


@pytest.mark.parametrize(
    ("sev", "expected"),
    [
        ("sev1", "critical"),
        ("sev2", "error"),
        ("sev3", "warning"),
        ("SEV2", "error"),
        ("?", "critical"),
    ],
)
def test_severity_mapping(sev, expected):
    assert pagerduty_severity(sev) == expected


def test_sev3_is_accepted_as_warning(pd, backend):
    backend.send(notice(severity="sev3"))
    assert pd.events[0]["payload"]["severity"] == "warning"


def test_same_page_twice_opens_one_incident(pd, backend):
    backend.send(notice())
    backend.send(notice())
    assert len(pd.events) == 2
    assert pd.opened == ["safeguard-page-7"]
    assert pd.incidents == {"safeguard-page-7": "triggered"}
    backend.send(notice(page_id=8))
    assert pd.opened == ["safeguard-page-7", "safeguard-page-8"]


def test_resolve_uses_the_same_dedup_key(pd, backend):
    backend.send(notice())
    backend.resolve(notice())
    assert pd.incidents == {"safeguard-page-7": "resolved"}
    assert pd.events[-1] == {
        "routing_key": KEY,
        "event_action": "resolve",
        "dedup_key": "safeguard-page-7",
    }


def test_summary_is_capped(pd, backend):
    backend.send(notice(reason="overdue " * 400))
    summary = pd.events[0]["payload"]["summary"]
    assert len(summary) <= 1024
    assert summary.endswith("…")


def test_400_is_permanent(pd, tmp_path):
    # An override template that renders an empty summary: the API refuses the event.
    (tmp_path / "pagerduty_summary.txt").write_text("{# nothing #}")
    b = PagerDutyBackend(pd.url, KEY, timeout=5.0, renderer=PageRenderer(tmp_path))
    with pytest.raises(DeliveryError) as err:
        b.send(notice())
    assert err.value.transient is False
    assert err.value.status == 400
    assert "payload.summary" in str(err.value)
    assert KEY not in str(err.value)
    assert pd.events == []
    b.close()


@pytest.mark.parametrize("status", [500, 429])
def test_server_errors_and_throttling_are_transient(pd, backend, status):
    pd.fail_next(1, status=status)
    with pytest.raises(DeliveryError) as err:
        backend.send(notice())
    assert err.value.transient is True
    assert err.value.status == status
    if status == 429:
        assert err.value.retry_after == 1.0
    assert pd.incidents == {}
    backend.send(notice())  # the next try goes through
    assert pd.incidents == {"safeguard-page-7": "triggered"}


def test_timeout_is_transient(pd):
    pd.delay(2.0)
    b = PagerDutyBackend(pd.url, KEY, timeout=0.2)
    with pytest.raises(DeliveryError) as err:
        b.send(notice())
    assert err.value.transient is True
    assert "timed out" in str(err.value)
    b.close()


def test_connection_refused_is_transient():
    server = PagerDutyStandIn().start()
    url = server.url
    server.stop()
    b = PagerDutyBackend(url, KEY, timeout=1.0)
    with pytest.raises(DeliveryError) as err:
        b.send(notice())
    assert err.value.transient is True
    b.close()


def test_injected_client_is_used_and_not_closed(pd):
    with httpx.Client() as client:
        b = PagerDutyBackend(pd.url, KEY, client=client)
        b.send(notice())
        b.close()
        assert not client.is_closed
    assert len(pd.events) == 1


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("ftp://x/v2/enqueue", KEY),
        ("not a url", KEY),
        ("https://events.pagerduty.com/v2/enqueue", "short"),
        ("https://events.pagerduty.com/v2/enqueue", ""),
    ],
)
def test_bad_config_is_permanent(url, key):
    with pytest.raises(DeliveryError) as err:
        PagerDutyBackend(url, key)
    assert err.value.transient is False


# -- the stand-in itself ------------------------------------------------------------------


def post(pd, body):
    return httpx.post(pd.url, content=body if isinstance(body, bytes) else json.dumps(body))


def trigger(**over):
    event = {
        "routing_key": KEY,
        "event_action": "trigger",
        "payload": {"summary": "s", "source": "x", "severity": "info"},
    }
    event.update(over)
    return event


def test_standin_answers_like_the_api(pd):
    r = post(pd, trigger(dedup_key="k1"))
    assert r.status_code == 202
    assert r.json() == {"status": "success", "message": "Event processed", "dedup_key": "k1"}
    r = post(pd, trigger())
    assert r.status_code == 202
    generated = r.json()["dedup_key"]
    assert pd.incidents[generated] == "triggered"


@pytest.mark.parametrize(
    ("event", "fragment"),
    [
        (trigger(routing_key="abc"), "routing_key"),
        (trigger(event_action="explode"), "event_action"),
        ({"routing_key": KEY, "event_action": "resolve"}, "dedup_key"),
        ({"routing_key": KEY, "event_action": "acknowledge"}, "dedup_key"),
        (trigger(dedup_key="k" * 256), "dedup_key"),
        (trigger(payload={"source": "x", "severity": "info"}), "payload.summary"),
        (
            trigger(payload={"summary": "s" * 1025, "source": "x", "severity": "info"}),
            "payload.summary",
        ),
        (trigger(payload={"summary": "s", "severity": "info"}), "payload.source"),
        (trigger(payload={"summary": "s", "source": "x", "severity": "sev1"}), "payload.severity"),
        (trigger(payload=None), "payload"),
    ],
)
def test_standin_rejects_invalid_events(pd, event, fragment):
    assert any(fragment in e for e in validate_event(event))
    r = post(pd, event)
    assert r.status_code == 400
    body = r.json()
    assert body["status"] == "invalid event"
    assert body["message"] == "Event object is invalid"
    assert any(fragment in e for e in body["errors"])
    assert pd.events == []


def test_standin_rejects_non_json(pd):
    r = post(pd, b"routing_key=x")
    assert r.status_code == 400
    assert r.json()["status"] == "invalid event"


def test_standin_incident_lifecycle(pd):
    assert post(pd, trigger(dedup_key="k")).status_code == 202
    assert (
        post(pd, {"routing_key": KEY, "event_action": "acknowledge", "dedup_key": "k"}).status_code
        == 202
    )
    assert pd.incidents["k"] == "acknowledged"
    post(pd, trigger(dedup_key="k"))  # still open: grouped, not a new incident
    assert pd.opened == ["k"] and pd.incidents["k"] == "acknowledged"
    post(pd, {"routing_key": KEY, "event_action": "resolve", "dedup_key": "k"})
    assert pd.incidents["k"] == "resolved"
    post(pd, trigger(dedup_key="k"))  # resolved: a new incident
    assert pd.opened == ["k", "k"] and pd.incidents["k"] == "triggered"
    # resolving an unknown key is accepted and does nothing
    assert (
        post(pd, {"routing_key": KEY, "event_action": "resolve", "dedup_key": "zz"}).status_code
        == 202
    )
    assert "zz" not in pd.incidents


def test_standin_fail_next_counts_down(pd):
    pd.fail_next(2, status=500)
    assert post(pd, trigger()).status_code == 500
    assert post(pd, trigger()).status_code == 500
    assert post(pd, trigger()).status_code == 202
    with pytest.raises(ValueError):
        pd.fail_next(1, status=404)


def test_standin_url_and_restartable_instances():
    a, b = PagerDutyStandIn(), PagerDutyStandIn()
    with a, b:
        assert a.url.startswith("http://127.0.0.1:") and a.url.endswith("/v2/enqueue")
        assert a.port != b.port
        assert httpx.get(a.url).status_code == 405
