"""Shared HTTP plumbing for the HTTP backends: one POST, its failure sorted into transient or not."""

from __future__ import annotations

import email.utils
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from bot.paging.base import DeliveryError, PagerConfigError

TRANSIENT_STATUSES = frozenset({408, 429})


def check_http_url(url: str, what: str) -> str:
    try:
        parts = urlsplit(url or "")
        _ = parts.port
    except ValueError as exc:
        raise PagerConfigError(f"{what} is not a valid URL") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        scheme = f"{parts.scheme}://" if parts.scheme else "no scheme"
        raise PagerConfigError(f"{what} must be an http(s) URL with a host (got {scheme})")
    return url


def redact_url(url: str) -> str:
    """scheme://host[:port] only: paths and queries of webhook URLs often hold secrets."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}"


def is_transient_status(status: int) -> bool:
    return status in TRANSIENT_STATUSES or status >= 500


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Parse a Retry-After header: delta seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now_dt = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return max(0.0, (when - now_dt).total_seconds())


def post(
    client: httpx.Client | None,
    url: str,
    *,
    content: bytes,
    headers: dict[str, str],
    timeout: float,
    what: str,
) -> httpx.Response:
    """POST once. Returns the response for a 2xx; raises DeliveryError otherwise.

    Without a ``client`` a short-lived one is used (pages are rare; nothing to leak or close).
    """
    where = redact_url(url)
    try:
        if client is None:
            with httpx.Client(follow_redirects=False) as own:
                response = own.post(url, content=content, headers=headers, timeout=timeout)
        else:
            response = client.post(url, content=content, headers=headers, timeout=timeout)
    except httpx.TimeoutException as exc:
        raise DeliveryError(
            f"{what}: timed out after {timeout:g}s ({where}): {type(exc).__name__}",
            transient=True,
        ) from exc
    except httpx.TransportError as exc:
        raise DeliveryError(
            f"{what}: connection failed ({where}): {type(exc).__name__}: {exc}", transient=True
        ) from exc
    except httpx.HTTPError as exc:  # e.g. an invalid URL slipping past the check
        raise DeliveryError(f"{what}: {type(exc).__name__}: {exc}", transient=False) from exc
    status = response.status_code
    if 200 <= status < 300:
        return response
    detail = response.text[:500].strip()
    raise DeliveryError(
        f"{what}: HTTP {status} from {where}" + (f": {detail}" if detail else ""),
        transient=is_transient_status(status),
        status=status,
        retry_after=retry_after_seconds(response.headers.get("Retry-After")),
    )
