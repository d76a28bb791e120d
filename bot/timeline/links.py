"""Signed, expiring links to an incident's HTML timeline page.

A token is ``v2.<incident number>.<expiry, Unix seconds>.<user id>.<signature>``, where the
signature is HMAC-SHA256 (base64url, unpadded) over a domain-separated message holding the
incident number, the expiry and the Slack user the link was given to (so the page can check
that they are still a member when it is opened). ``v1`` tokens carry no user. It only uses
URL-safe characters, so it goes into a query string as it is::

    token = sign_link(secret, 7, default_expiry(now))
    url = f"{base}/incidents/7/timeline?token={token}"
    ...
    check_link(secret, 7, request.args.get("token"), now)   # raises LinkError

A link grants reading one incident's review until it expires; it cannot be widened to another
incident or extended without the secret. Naive datetimes are taken to be UTC.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from typing import Literal

DEFAULT_LIFETIME = timedelta(hours=1)
TOKEN_PARAM = "token"

Reason = Literal["expired", "forged", "wrong incident", "malformed"]
EXPIRED: Reason = "expired"
FORGED: Reason = "forged"
WRONG_INCIDENT: Reason = "wrong incident"
MALFORMED: Reason = "malformed"

_CONTEXT = b"safeguard/timeline-link/v1"
_CONTEXT_V2 = b"safeguard/timeline-link/v2"
_MAX_TOKEN = 160
_TOKEN = re.compile(r"v1\.([1-9][0-9]{0,17})\.(0|[1-9][0-9]{0,11})\.([A-Za-z0-9_-]{43})")
_TOKEN_V2 = re.compile(r"v2\.([1-9][0-9]{0,17})\.(0|[1-9][0-9]{0,11})\.([UW][A-Z0-9]{2,20})\.([A-Za-z0-9_-]{43})")
_USER = re.compile(r"[UW][A-Z0-9]{2,20}")


class LinkError(ValueError):
    """A timeline link was refused; ``reason`` is one of expired, forged, wrong incident,
    malformed."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason: Reason = reason


def _timestamp(at: datetime) -> int:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return int(at.timestamp())  # floor for positive times: a link never outlives expires_at


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes | bytearray) or not secret:
        raise ValueError("the link secret must be non-empty bytes")


def _signature(secret: bytes, incident_number: int, expires: int, user: str | None = None) -> str:
    if user is None:
        message = b"%s\n%d\n%d" % (_CONTEXT, incident_number, expires)
    else:
        message = b"%s\n%d\n%d\n%s" % (_CONTEXT_V2, incident_number, expires, user.encode("ascii"))
    digest = hmac.new(bytes(secret), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def default_expiry(now: datetime) -> datetime:
    """When a link made at ``now`` stops working: one hour later."""
    return now + DEFAULT_LIFETIME


def sign_link(secret: bytes, incident_number: int, expires_at: datetime, user: str | None = None) -> str:
    """A URL-safe token granting access to incident ``incident_number`` until ``expires_at``
    (to ``user``, a Slack user id, when given: the page then checks they may still see it)."""
    _check_secret(secret)
    if isinstance(incident_number, bool) or not isinstance(incident_number, int):
        raise TypeError("incident_number must be an int")
    if incident_number < 1:
        raise ValueError("incident_number must be positive")
    expires = _timestamp(expires_at)
    if expires < 0:
        raise ValueError("expires_at is before 1970")
    if user is None:
        return f"v1.{incident_number}.{expires}.{_signature(secret, incident_number, expires)}"
    if not _USER.fullmatch(user):
        raise ValueError("user must be a Slack user id")
    return f"v2.{incident_number}.{expires}.{user}.{_signature(secret, incident_number, expires, user)}"


def check_link(secret: bytes, incident_number: int, token: str | None, now: datetime) -> str | None:
    """Return the user the link was given to (None for a ``v1`` token) if ``token`` grants
    access to ``incident_number`` at ``now``; raise :class:`LinkError` otherwise. The signature
    is checked (in constant time) before anything the token claims is believed."""
    _check_secret(secret)
    if not isinstance(token, str) or len(token) > _MAX_TOKEN:
        raise LinkError(MALFORMED, "the link token is missing or malformed")
    user = None
    match = _TOKEN.fullmatch(token)
    if match is not None:
        signed = match.group(3)
    else:
        match = _TOKEN_V2.fullmatch(token)
        if match is None:
            raise LinkError(MALFORMED, "the link token is malformed")
        user, signed = match.group(3), match.group(4)
    signed_incident = int(match.group(1))
    expires = int(match.group(2))
    expected = _signature(secret, signed_incident, expires, user)
    if not hmac.compare_digest(expected.encode("ascii"), signed.encode("ascii")):
        raise LinkError(FORGED, "the link's signature is not valid")
    if signed_incident != incident_number:
        raise LinkError(
            WRONG_INCIDENT, f"the link is for another incident, not INC-{incident_number}"
        )
    if _timestamp(now) >= expires:
        expired_at = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        raise LinkError(EXPIRED, f"the link expired at {expired_at}")
    return user


# --------------------------------------------------------------------------- report links
# The same kind of link for the report across incidents (``/reports``): personal, expiring, and
# signed over the period and playbook it shows, so it cannot be widened to another period.
# ``r1.<expiry>.<user>.<signature>``; the period travels in the query string beside it.

_REPORT_CONTEXT = b"safeguard/report-link/v1"
_REPORT_TOKEN = re.compile(r"r1\.(0|[1-9][0-9]{0,11})\.([UW][A-Z0-9]{2,20})\.([A-Za-z0-9_-]{43})")


def _report_signature(secret: bytes, scope: str, expires: int, user: str) -> str:
    message = b"%s\n%s\n%d\n%s" % (_REPORT_CONTEXT, scope.encode("utf-8"), expires, user.encode("ascii"))
    digest = hmac.new(bytes(secret), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign_report_link(secret: bytes, scope: str, expires_at: datetime, user: str) -> str:
    """A token granting ``user`` the report ``scope`` (see bot.reports.service.scope) until ``expires_at``."""
    _check_secret(secret)
    if not _USER.fullmatch(user):
        raise ValueError("user must be a Slack user id")
    expires = _timestamp(expires_at)
    return f"r1.{expires}.{user}.{_report_signature(secret, scope, expires, user)}"


def check_report_link(secret: bytes, scope: str, token: str | None, now: datetime) -> str:
    """The user a report link was given to, if ``token`` grants ``scope`` at ``now``; else LinkError."""
    _check_secret(secret)
    if not isinstance(token, str) or len(token) > _MAX_TOKEN:
        raise LinkError(MALFORMED, "the link token is missing or malformed")
    match = _REPORT_TOKEN.fullmatch(token)
    if match is None:
        raise LinkError(MALFORMED, "the link token is malformed")
    expires, user, signed = int(match.group(1)), match.group(2), match.group(3)
    expected = _report_signature(secret, scope, expires, user)
    if not hmac.compare_digest(expected.encode("ascii"), signed.encode("ascii")):
        raise LinkError(FORGED, "the link's signature is not valid for this period")
    if _timestamp(now) >= expires:
        expired_at = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        raise LinkError(EXPIRED, f"the link expired at {expired_at}")
    return user
