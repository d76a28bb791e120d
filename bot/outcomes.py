"""What a change did, as plain data: the presentation side (Slack replies, the API) puts it into
words. No Slack text is made in the core."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Outcome:
    kind: str  # names the template block that says it (templates/slack/outcome.txt.j2)
    incident: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"INC-{self.incident}" if self.incident is not None else ""
