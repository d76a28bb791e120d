"""Back-off between delivery attempts: exponential, jittered, capped."""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from datetime import timedelta

JITTER = 0.2
_MAX_DOUBLINGS = 60  # far beyond any cap; keeps the float finite


def backoff(
    attempt: int,
    first: timedelta,
    cap: timedelta = timedelta(minutes=5),
    *,
    random: Callable[[], float] | _random.Random | None = None,
) -> timedelta:
    """How long to wait after failed attempt number ``attempt`` (counting from 1).

    Attempt 1 waits ``first``, attempt 2 twice that, attempt 3 four times…, each multiplied
    by a jitter factor in [0.8, 1.2] drawn from ``random`` (a ``random.Random`` or a callable
    returning a float in [0, 1), default :func:`random.random`), and never more than ``cap``. ``attempt`` 0 is
    treated like 1.
    """
    if first < timedelta(0):
        raise ValueError("first must not be negative")
    if cap < timedelta(0):
        raise ValueError("cap must not be negative")
    doublings = min(max(int(attempt), 1) - 1, _MAX_DOUBLINGS)
    cap_s = cap.total_seconds()
    base = min(first.total_seconds() * (2.0**doublings), cap_s)
    if random is None:
        draw: Callable[[], float] = _random.random
    elif isinstance(random, _random.Random):
        draw = random.random
    else:
        draw = random
    r = draw()
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"random() must return a float in [0, 1], got {r!r}")
    factor = 1.0 + JITTER * (2.0 * r - 1.0)
    return timedelta(seconds=min(base * factor, cap_s))
