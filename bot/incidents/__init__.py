"""The incident domain: declare, work the steps, resolve. Free of Slack types."""

from __future__ import annotations


def ref(number: int) -> str:
    return f"INC-{number}"


def parse_ref(text: str) -> int | None:
    """`INC-7`, `inc-7`, `#7` or `7` → 7."""
    text = text.strip().lstrip("#")
    if text.upper().startswith("INC-"):
        text = text[4:]
    return int(text) if text.isascii() and text.isdigit() else None
