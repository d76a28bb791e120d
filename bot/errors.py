"""Domain errors: each carries the message a person sees (an ephemeral reply or a CLI error)."""

from __future__ import annotations


class DomainError(Exception):
    """Something the user asked for cannot be done; `str(err)` is safe to show them."""


class NotFound(DomainError):
    pass


class Forbidden(DomainError):
    pass


class InvalidInput(DomainError):
    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or {}


class SlackError(Exception):
    """Slack refused or failed a call (`code` is Slack's error code, `method` the API method). Not a
    DomainError: the person did nothing wrong, and the outbox decides whether to retry."""

    def __init__(self, code: str, method: str) -> None:
        super().__init__(f"{method}: {code}")
        self.code = code
        self.method = method


class RateLimited(Exception):
    """Slack's rate limit for `method` leaves no room for this call for `retry_after` seconds (the
    bot's own pacing says so, or Slack answered 429). Nothing was sent. Not a SlackError: code
    that falls back or gives up on Slack errors must let it through, and the outbox puts the task
    back until then without counting an attempt."""

    def __init__(self, method: str, retry_after: float) -> None:
        super().__init__(f"{method}: rate limited for {retry_after:.1f} s")
        self.method = method
        self.retry_after = retry_after
