"""Durations as playbooks and the config write them: ``30s``, ``15m``, ``4h``, ``330d``.

A duration is a positive whole number followed by one unit letter (s, m, h or d), nothing
else: no spaces, no fractions, no combined forms like ``1h30m`` (write ``90m``).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

PATTERN = r"^[1-9][0-9]*[smhd]$"
UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
EXAMPLES = "30s, 15m, 4h or 330d"

_DURATION = re.compile(PATTERN)


def parse_duration(text: str) -> timedelta:
    """``"4h"`` → ``timedelta(hours=4)``. Raises ValueError saying how to write one."""
    if not isinstance(text, str):
        raise ValueError(
            f"a duration is a whole number and a unit (s, m, h or d), like {EXAMPLES}; "
            f"got {text!r}"
        )
    value = text.strip()
    if not _DURATION.match(value):
        raise ValueError(
            f"invalid duration {text!r}: write a positive whole number and a unit "
            f"(s, m, h or d), like {EXAMPLES}"
        )
    try:
        return timedelta(seconds=int(value[:-1]) * UNITS[value[-1]])
    except OverflowError:
        raise ValueError(f"duration {text!r} is too long") from None


def format_duration(delta: timedelta) -> str:
    """``timedelta(hours=4)`` → ``"4h"``: the largest unit that divides it exactly.

    Whole-second durations round-trip through :func:`parse_duration`. Sub-second parts are
    rounded to the nearest second; zero is ``"0s"`` and negative durations get a ``-``.
    """
    seconds = round(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds == 0:
        return "0s"
    for unit, size in UNITS.items():
        if seconds % size == 0:
            return f"{sign}{seconds // size}{unit}"
    raise AssertionError("unreachable: every whole number of seconds divides by 1")


def _validate(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        if value <= timedelta(0):
            raise ValueError(f"a duration must be positive, got {format_duration(value)}")
        return value
    return parse_duration(value)


Duration = Annotated[
    timedelta,
    BeforeValidator(_validate),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": PATTERN, "examples": ["15m", "4h", "330d"]}),
]
"""A pydantic field type: accepts ``"4h"`` (or a positive timedelta), holds a timedelta,
serialises back to ``"4h"``."""
