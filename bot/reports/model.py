"""The figures of a compliance report: plain data, no database, no rendering. Durations are
seconds. Nothing here names a person or quotes what one wrote: incidents appear by number."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from .period import Period

LEGAL, INTERNAL = "legal", "internal"
CLOCK_RESULTS = ("on_time", "late", "missed", "open", "cancelled")


def nearest_rank(ordered: list[float], percent: float) -> float | None:
    """The nearest-rank percentile (the value at rank ⌈p·n/100⌉ of the sorted values): always a
    value that occurred, so every figure can be checked by hand."""
    if not ordered:
        return None
    return ordered[max(math.ceil(percent * len(ordered) / 100), 1) - 1]


@dataclass(frozen=True)
class Spread:
    count: int
    p50: float | None
    p90: float | None
    max: float | None

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        ordered = sorted(values)
        return cls(len(ordered), nearest_rank(ordered, 50), nearest_rank(ordered, 90),
                   ordered[-1] if ordered else None)


@dataclass(frozen=True)
class CountRow:
    playbook: str
    severity: str
    incidents: int


@dataclass(frozen=True)
class TimingRow:
    playbook: str
    measure: str  # "declared_to_t0" | "t0_to_report"
    step: str  # the report's step ("" for declared_to_t0)
    spread: Spread


@dataclass
class ClockCounts:
    on_time: int = 0
    late: int = 0
    missed: int = 0
    open: int = 0
    cancelled: int = 0

    def add(self, result: str) -> None:
        setattr(self, result, getattr(self, result) + 1)

    @property
    def decided(self) -> int:
        """Clocks with an outcome: met on time, met late, or run out unmet."""
        return self.on_time + self.late + self.missed

    @property
    def total(self) -> int:
        return self.decided + self.open + self.cancelled

    def share(self, result: str) -> float | None:
        """Percent of the decided clocks (None when none is decided yet), one decimal."""
        return round(100 * getattr(self, result) / self.decided, 1) if self.decided else None


@dataclass(frozen=True)
class ClockRow:
    playbook: str
    step: str
    clock: str  # "page legal 24h after confirm"
    kind: str  # legal | internal
    counts: ClockCounts


@dataclass(frozen=True)
class PageRow:
    role: str  # the role id (never a person)
    label: str
    pages: int
    acked: int
    unanswered: int  # went past its last escalation level unacknowledged
    escalated: int  # reached level 2 or higher
    escalations: int  # level steps taken, summed
    time_to_ack: Spread


@dataclass(frozen=True)
class SkipRow:
    playbook: str
    step: str
    skipped: int
    incidents: tuple[int, ...]


@dataclass(frozen=True)
class ForcedClose:
    incident: int
    playbook: str
    closed_at: datetime
    open_legal_steps: tuple[str, ...]


@dataclass(frozen=True)
class Hold:
    incident: int
    playbook: str
    step: str
    started_at: datetime  # the report was logged
    ends_at: datetime  # 18 U.S.C. 2258A(h): a year later


@dataclass(frozen=True)
class Filing:
    """One report logged, for the chart of reports against their deadlines."""

    incident: int
    playbook: str
    step: str
    since_t0: float


@dataclass(frozen=True)
class Deadline:
    playbook: str
    step: str
    clock: str
    kind: str
    after: float  # seconds after T0


@dataclass(frozen=True, kw_only=True)
class Report:
    period: Period
    playbook: str | None
    generated_at: datetime
    incidents: int
    counts: list[CountRow] = field(default_factory=list)
    timings: list[TimingRow] = field(default_factory=list)
    clocks: list[ClockRow] = field(default_factory=list)
    clock_totals: dict[str, ClockCounts] = field(default_factory=dict)  # legal / internal
    pages: list[PageRow] = field(default_factory=list)
    skips: list[SkipRow] = field(default_factory=list)
    forced_closes: list[ForcedClose] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    filings: list[Filing] = field(default_factory=list)
    deadlines: list[Deadline] = field(default_factory=list)
