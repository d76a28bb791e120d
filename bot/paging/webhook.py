"""Signed webhook backend.

Each page is POSTed as JSON (``{"type": "page" | "page_resolved", "page_id", "incident", …}``)
and signed the way Slack signs its requests, with our own header names:

    X-Safeguard-Request-Timestamp: <unix seconds>
    X-Safeguard-Signature: v1=<hex HMAC-SHA256(secret, "v1:{timestamp}:{raw body}")>

Receivers check it with :func:`verify_webhook_signature`, which refuses timestamps more than
five minutes away from now (either way). Any 2xx answer is success.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from bot.config_types import EnvName, HttpUrl, StrictModel
from bot.durations import Duration
from bot.paging._config import _get, _required, _secret, _timeout, build_checked
from bot.paging._http import check_http_url, post
from bot.paging.base import PageNotice, PagerConfigError, PagerKind
from bot.paging.render import PageRenderer

TIMESTAMP_HEADER = "X-Safeguard-Request-Timestamp"
SIGNATURE_HEADER = "X-Safeguard-Signature"
DELIVERY_HEADER = "X-Safeguard-Delivery"
SIGNATURE_VERSION = "v1"
MAX_SKEW_SECONDS = 5 * 60


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def sign_webhook(secret: str, timestamp: int | str, body: bytes | str) -> str:
    """The signature header value for ``body`` sent at ``timestamp``: ``v1=<hex>``."""
    base = b"%s:%s:%s" % (
        SIGNATURE_VERSION.encode(),
        str(timestamp).encode("ascii"),
        _as_bytes(body),
    )
    digest = hmac.new(_as_bytes(secret), base, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify_webhook_signature(
    secret: str,
    timestamp: str | int | None,
    body: bytes | str,
    signature: str | None,
    now: float | datetime | None = None,
) -> bool:
    """True when ``signature`` signs ``body`` at ``timestamp`` with ``secret``, and the
    timestamp is within five minutes of ``now`` (unix seconds or an aware datetime;
    defaults to the current time)."""
    if not secret or timestamp is None or not signature:
        return False
    try:
        ts = int(str(timestamp).strip())
    except ValueError:
        return False
    if now is None:
        now_s = time.time()
    elif isinstance(now, datetime):
        now_s = now.timestamp()
    else:
        now_s = float(now)
    if abs(now_s - ts) > MAX_SKEW_SECONDS:
        return False
    expected = sign_webhook(secret, ts, body)
    return hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("utf-8"))


class WebhookBackend:
    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: str,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
        *,
        renderer: PageRenderer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = check_http_url(url, "webhook url")
        if not secret:
            raise PagerConfigError("webhook secret is empty")
        self._secret = secret
        self.timeout = float(timeout)
        if self.timeout <= 0:
            raise PagerConfigError("webhook timeout must be positive")
        self.renderer = renderer or PageRenderer()
        self.clock = clock
        self._client = client

    def __repr__(self) -> str:  # never show the secret
        return f"WebhookBackend(url={self.url!r}, timeout={self.timeout})"

    def body(self, notice: PageNotice, event: str = "page") -> dict[str, Any]:
        return self.renderer.webhook_body(notice, event=event)

    def signed_request(
        self, notice: PageNotice, event: str = "page"
    ) -> tuple[bytes, dict[str, str]]:
        """The exact bytes and headers that would be POSTed."""
        raw = json.dumps(
            self.body(notice, event), ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")
        ts = int(self.clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Safeguard-Pager/1",
            TIMESTAMP_HEADER: str(ts),
            # The same for every retry of one delivery: the receiver can drop a repeat.
            DELIVERY_HEADER: f"{notice.dedup_key}.level-{notice.level}.{event}",
            SIGNATURE_HEADER: sign_webhook(self._secret, ts, raw),
        }
        return raw, headers

    def send(self, notice: PageNotice) -> None:
        self._post(notice, "page")

    def resolve(self, notice: PageNotice) -> None:
        self._post(notice, "page_resolved")

    def close(self) -> None:
        """Nothing to release: without an injected client each delivery uses its own."""

    def __enter__(self) -> WebhookBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, notice: PageNotice, event: str) -> None:
        raw, headers = self.signed_request(notice, event)
        post(
            self._client,
            self.url,
            content=raw,
            headers=headers,
            timeout=self.timeout,
            what=f"webhook {event} {notice.dedup_key}",
        )


# --- the pager kind: its config section and how to build it from that --------------------


class WebhookConfig(StrictModel):
    url: HttpUrl
    secret_env: EnvName
    """Names the variable holding the secret the webhook backend signs requests with."""
    timeout: Duration = timedelta(seconds=10)


def _build(section, where: str, env, renderer) -> WebhookBackend:
    return build_checked(where, WebhookBackend,
                         url=str(_required(section, where, "url")),
                         secret=_secret(section, where, "secret_env", env),
                         timeout=_timeout(_get(section, "timeout"), where), renderer=renderer)


KIND = PagerKind("webhook", WebhookConfig, _build)
