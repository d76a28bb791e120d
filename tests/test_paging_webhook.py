"""Signed webhook backend against a tiny local receiver (Flask under waitress) that verifies
the signature the way a real receiver would."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from flask import Flask, request

from bot.paging.base import Backend, DeliveryError
from bot.paging.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookBackend,
    sign_webhook,
    verify_webhook_signature,
)
from runtime.serving import BackgroundServer
from tests.paging_support import SECRET_TITLE, notice

SECRET = "whsec-test-0123456789"




class Receiver:
    """A webhook receiver on a free port; answers 401 to a bad signature."""

    def __init__(self, secret: str = SECRET):
        self.secret = secret
        self.received: list[dict] = []
        self.status = 200
        self.app = Flask("receiver")

        @self.app.post("/hook")
        def hook():
            raw = request.get_data()
            ok = verify_webhook_signature(
                self.secret,
                request.headers.get(TIMESTAMP_HEADER),
                raw,
                request.headers.get(SIGNATURE_HEADER),
            )
            if not ok:
                return {"error": "invalid signature"}, 401
            if self.status >= 300:
                return {"error": "unavailable"}, self.status
            self.received.append(json.loads(raw))
            return "", 204

    def __enter__(self):
        self.server = BackgroundServer(self.app, threads=4).start()
        self.url = self.server.url + "hook"
        return self

    def __exit__(self, *exc):
        self.server.stop()


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


def test_page_is_delivered_and_verified(receiver):
    with WebhookBackend(receiver.url, SECRET, timeout=5) as backend:
        assert isinstance(backend, Backend) and backend.name == "webhook"
        assert SECRET not in repr(backend)
        backend.send(notice())
    assert receiver.received == [
        {
            "type": "page",
            "page_id": 7,
            "dedup_key": "safeguard-page-7",
            "incident": "INC-7",
            "playbook": "Confirmed CSAM report",
            "severity": "sev1",
            "role": "legal",
            "role_label": "Legal on-call",
            "level": 2,
            "reason": "NCMEC report not filed 24h after confirmation",
            "channel_id": "C0INC7",
            "channel_link": "https://example.slack.com/archives/C0INC7",
        }
    ]


def test_body_carries_no_content_or_identifiers(receiver):
    WebhookBackend(receiver.url, SECRET).send(notice())
    raw = json.dumps(receiver.received)
    for text in (SECRET_TITLE, "kid_1234", "U0LEGAL01", "legal@example.org"):
        assert text not in raw


def test_resolve_posts_page_resolved(receiver):
    backend = WebhookBackend(receiver.url, SECRET)
    backend.send(notice())
    backend.resolve(notice())
    assert [b["type"] for b in receiver.received] == ["page", "page_resolved"]
    assert receiver.received[1]["dedup_key"] == "safeguard-page-7"


def test_text_that_looks_like_html_or_json_survives(receiver):
    reason = 'overdue </script> & "quoted" \u00e9'
    WebhookBackend(receiver.url, SECRET).send(notice(reason=reason))
    assert receiver.received[0]["reason"] == reason


def test_wrong_secret_is_refused_permanent(receiver):
    with pytest.raises(DeliveryError) as err:
        WebhookBackend(receiver.url, "not-the-secret").send(notice())
    assert err.value.transient is False
    assert err.value.status == 401
    assert receiver.received == []


def test_stale_clock_is_refused(receiver):
    backend = WebhookBackend(receiver.url, SECRET, clock=lambda: time.time() - 301)
    with pytest.raises(DeliveryError) as err:
        backend.send(notice())
    assert err.value.status == 401


@pytest.mark.parametrize(
    ("status", "transient"), [(500, True), (503, True), (429, True), (404, False), (400, False)]
)
def test_status_decides_transience(receiver, status, transient):
    receiver.status = status
    with pytest.raises(DeliveryError) as err:
        WebhookBackend(receiver.url, SECRET).send(notice())
    assert err.value.transient is transient
    assert err.value.status == status


def test_unreachable_is_transient():
    with Receiver() as r:
        url = r.url
    with pytest.raises(DeliveryError) as err:
        WebhookBackend(url, SECRET, timeout=1).send(notice())
    assert err.value.transient is True


def test_error_message_does_not_reveal_url_path_or_secret():
    with Receiver() as r:
        url = r.url + "/T0SECRETPATH?token=abc"
    with pytest.raises(DeliveryError) as err:
        WebhookBackend(url, SECRET, timeout=1).send(notice())
    assert "T0SECRETPATH" not in str(err.value) and "abc" not in str(err.value)
    assert SECRET not in str(err.value)


@pytest.mark.parametrize(
    ("url", "secret"), [("ftp://h/x", SECRET), ("http://h/x", ""), ("", SECRET)]
)
def test_bad_config_is_permanent(url, secret):
    with pytest.raises(DeliveryError) as err:
        WebhookBackend(url, secret)
    assert err.value.transient is False


# -- the signature ------------------------------------------------------------------------


def test_signature_matches_the_documented_recipe():
    import hashlib
    import hmac

    body = b'{"type":"page"}'
    expected = hmac.new(SECRET.encode(), b"v1:1700000000:" + body, hashlib.sha256).hexdigest()
    assert sign_webhook(SECRET, 1700000000, body) == f"v1={expected}"


def test_sent_headers_sign_the_exact_body():
    backend = WebhookBackend("http://127.0.0.1:9/x", SECRET, clock=lambda: 1700000000.7)
    raw, headers = backend.signed_request(notice())
    assert headers[TIMESTAMP_HEADER] == "1700000000"
    assert headers["Content-Type"] == "application/json"
    assert verify_webhook_signature(
        SECRET, headers[TIMESTAMP_HEADER], raw, headers[SIGNATURE_HEADER], now=1700000000
    )


def test_verify_window_and_tampering():
    body = b'{"type":"page","page_id":7}'
    ts = 1700000000
    sig = sign_webhook(SECRET, ts, body)
    assert verify_webhook_signature(SECRET, str(ts), body, sig, now=ts)
    assert verify_webhook_signature(SECRET, ts, body.decode(), sig, now=ts + 300)
    assert verify_webhook_signature(SECRET, ts, body, sig, now=ts - 300)
    assert not verify_webhook_signature(SECRET, ts, body, sig, now=ts + 301)
    assert not verify_webhook_signature(SECRET, ts, body, sig, now=ts - 301)
    assert verify_webhook_signature(SECRET, ts, body, sig, now=datetime.fromtimestamp(ts + 10, UTC))
    assert not verify_webhook_signature(SECRET, ts, body + b" ", sig, now=ts)
    assert not verify_webhook_signature(SECRET, ts + 1, body, sig, now=ts)
    assert not verify_webhook_signature("other", ts, body, sig, now=ts)
    assert not verify_webhook_signature(SECRET, ts, body, sig.replace("v1=", "v0="), now=ts)
    assert not verify_webhook_signature(SECRET, ts, body, sig[:-1], now=ts)
    assert not verify_webhook_signature(SECRET, "abc", body, sig, now=ts)
    assert not verify_webhook_signature(SECRET, None, body, sig, now=ts)
    assert not verify_webhook_signature(SECRET, ts, body, None, now=ts)
    assert not verify_webhook_signature(SECRET, ts, body, "v1=é", now=ts)
    assert not verify_webhook_signature("", ts, body, sign_webhook("", ts, body), now=ts)
