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
