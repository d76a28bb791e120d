"""Did-you-mean for ids people type (steps, roles, playbooks): the closest known one, then the
list, so a typo at 3 a.m. costs one glance instead of a trip to the help."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(given: str, known: Iterable[str]) -> str | None:
    choices = list(known)
    given = given.lower()
    prefixed = [c for c in choices if given and c.startswith(given)]  # `ncmec` means `ncmec-report`
    if len(prefixed) == 1:
        return prefixed[0]
    found = difflib.get_close_matches(given, choices, n=1, cutoff=0.6)
    return found[0] if found else None


def no_such(kind: str, given: str, known: Iterable[str], *, prefix: str = "") -> str:
    """``There is no step `confrim`. Did you mean `confirm`? Steps: `confirm`, `ncmec-report`.``"""
    choices = list(known)
    guess = closest(given, choices)
    listed = ", ".join(f"`{c}`" for c in choices)
    head = f"{prefix}There is no {kind} `{given[:60]}`." if not prefix else f"{prefix} has no {kind} `{given[:60]}`."
    hint = f" Did you mean `{guess}`?" if guess else ""
    return f"{head}{hint} {kind.capitalize()}s: {listed}."
