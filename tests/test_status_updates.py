"""Status updates and the announcement channel, without Slack: the config names a channel by
its id (a `#name` is an error naming the file, line and field), and the next-update choices."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from bot.check import check
from bot.config import OrgConfig
from bot.errors import InvalidInput
from bot.incidents.updates import next_interval


def test_the_announcement_channel_is_an_id_and_check_says_where(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("announcements:\n  channel: C0TEAM001\n")
    assert check(good) == []
    bad = tmp_path / "bad.yaml"
    bad.write_text("leads: [U0LEAD001]\nannouncements:\n  channel: '#t-and-s'\n")
    [problem] = check(bad)
    text = str(problem)
    assert "bad.yaml" in text and ":3" in text and "announcements.channel" in text and "channel id" in text
    typo = tmp_path / "typo.yaml"
    typo.write_text("announcements:\n  chanel: C0TEAM001\n")
    assert check(typo)  # an unknown key is refused, not ignored


def test_next_update_time_is_a_choice_or_the_severity_cadence():
    core = SimpleNamespace(config=OrgConfig(status_updates={"sev1": "30m"}))
    assert next_interval(core, "sev1", None) == timedelta(minutes=30)
    assert next_interval(core, "sev3", "") == timedelta(hours=1)  # no cadence for sev3: an hour
    assert next_interval(core, "sev1", "2h") == timedelta(hours=2)
    for wrong in ("2 hours", "1m", "3d", "-1h"):
        with pytest.raises(InvalidInput) as refused:
            next_interval(core, "sev1", wrong)
        assert refused.value.fields == {"next_update": "Pick a time for the next update."}
