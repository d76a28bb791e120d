"""The notice every paging backend delivers, the error it raises, and the backend protocol.

Content rule: a page names the incident ref, the playbook title, the severity, the role, the
escalation level, the bot's own reason text and a Slack deep link to the incident channel. It never
carries content or a platform user's / victim's identifiers. ``incident_title`` is carried for
the bot's own use (logs, the Slack DM written elsewhere) and is deliberately NOT rendered by the
backends in this package, since a declared summary may hold exactly such identifiers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

DEDUP_PREFIX = "safeguard-page-"


def page_dedup_key(page_id: int) -> str:
    """The stable de-duplication key of a page: the same page always maps to the same key."""
    return f"{DEDUP_PREFIX}{page_id}"


@dataclass(frozen=True)
class PageNotice:
    page_id: int
    incident_ref: str
    incident_title: str
    playbook_title: str
    severity: str
    role: str
    role_label: str
    level: int
    reason: str
    channel_id: str | None = None
    channel_link: str | None = None
    users: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    dedup_key: str = ""
    said: str = ""
    """A responder's own words for a page by hand. Shown only inside Slack (the DM); never sent
    to PagerDuty, e-mail or a webhook, because free text may hold what a page must not carry."""

    def __post_init__(self) -> None:
        if not self.dedup_key:
            object.__setattr__(self, "dedup_key", page_dedup_key(self.page_id))


class DeliveryError(Exception):
    """A backend could not deliver a notice.

    ``transient`` is True when trying again later may succeed (timeouts, connection errors,
    HTTP 429 and 5xx, SMTP 4xx) and False when it will not without a change (other HTTP 4xx,
    SMTP 5xx, bad configuration). ``status`` is the HTTP status or SMTP code when there was
    one; ``retry_after`` the server's requested wait in seconds when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.status = status
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, transient={self.transient}, "
            f"status={self.status})"
        )


class PagerConfigError(DeliveryError, ValueError):
    """Bad or missing pager configuration (never transient)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False)


@runtime_checkable
class Backend(Protocol):
    name: str

    def send(self, notice: PageNotice) -> None:
        """Deliver the page once; raise DeliveryError on failure."""
        ...

    def resolve(self, notice: PageNotice) -> None:
        """The page was acknowledged; close it where the backend has that idea, else no-op."""
        ...


@dataclass(frozen=True)
class PagerKind:
    """One kind of pager: its name (the `pagers:` key and the `notify:` word), the pydantic model
    of its config section, and `build(section, where, env, renderer) -> Backend`."""

    name: str
    config: type
    build: Any  # Callable[[Any, str, Mapping[str, str], PageRenderer], Backend]
