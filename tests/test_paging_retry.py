"""Back-off between page delivery attempts."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from bot.paging.retry import backoff

S = timedelta(seconds=1)


def middle():
    return 0.5  # jitter factor exactly 1.0


def test_grows_exponentially_without_jitter():
    waits = [backoff(n, 10 * S, random=middle) for n in range(1, 6)]
    assert waits == [10 * S, 20 * S, 40 * S, 80 * S, 160 * S]


def test_attempt_zero_is_like_one():
    assert backoff(0, 10 * S, random=middle) == 10 * S


def test_is_capped():
    assert backoff(6, 10 * S, random=middle) == timedelta(minutes=5)
    assert backoff(10_000, 10 * S, random=middle) == timedelta(minutes=5)
    assert backoff(4, 10 * S, cap=30 * S, random=middle) == 30 * S
    # jitter never pushes past the cap
    assert backoff(50, 10 * S, random=lambda: 0.999999) <= timedelta(minutes=5)


def test_jitter_is_plus_minus_twenty_percent():
    assert backoff(1, 10 * S, random=lambda: 0.0) == 8 * S
    assert backoff(1, 10 * S, random=lambda: 1.0) == 12 * S
    assert backoff(3, 10 * S, random=lambda: 0.25) == 36 * S
    rng = random.Random(42)
    waits = {backoff(2, 10 * S, random=rng) for _ in range(200)}
    assert len(waits) > 100
    assert all(16 * S <= w <= 24 * S for w in waits)


def test_capped_values_jitter_below_the_cap():
    assert backoff(20, 10 * S, random=lambda: 0.0) == timedelta(minutes=4)


def test_default_random_stays_in_range():
    for _ in range(100):
        assert 8 * S <= backoff(1, 10 * S) <= 12 * S


def test_bad_inputs():
    with pytest.raises(ValueError):
        backoff(1, -S)
    with pytest.raises(ValueError):
        backoff(1, S, random=lambda: 1.5)
