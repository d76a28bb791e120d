"""Slack's rate limits: the sandbox answers 429 + Retry-After as Slack does (per tier per
workspace, chat.postMessage per channel), and the bot paces itself so it almost never gets one."""

from __future__ import annotations

import httpx
import pytest

from sandbox.clock import ManualClock
from sandbox.ratelimits import TIERS, RateLimits
from sandbox.server import Sandbox

OPS = "C0OPS0001"


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def limited(clock):
    with Sandbox(port=0, clock=clock, rate_limits=True) as sb:
        yield sb


def call(sb: Sandbox, method: str, **args) -> httpx.Response:
    return httpx.post(sb.api_url + method, data=args, headers={"Authorization": f"Bearer {sb.bot_token}"})


def refused_exactly_as_slack(response: httpx.Response, retry_after: int) -> None:
    assert response.status_code == 429
    assert response.headers["Retry-After"] == str(retry_after)
    assert response.json() == {"ok": False, "error": "ratelimited"}


@pytest.mark.parametrize(("method", "args", "per_minute", "retry_after"), [
    ("conversations.list", {}, 20, 3),                    # Tier 2: one call every 3 s after the burst
    ("conversations.info", {"channel": OPS}, 50, 2),      # Tier 3: every 1.2 s
    ("users.info", {"user": "U0LEAD001"}, 100, 1),        # Tier 4: every 0.6 s
])
def test_each_tier_allows_its_minute_then_answers_429(limited, clock, method, args, per_minute, retry_after):
    for _ in range(per_minute):
        assert call(limited, method, **args).json()["ok"]
    refused_exactly_as_slack(call(limited, method, **args), retry_after)
    assert limited.calls[-1].http_status == 429
    assert call(limited, "auth.test").json()["ok"]  # other methods have their own allowance
    clock.advance(retry_after)
    assert call(limited, method, **args).json()["ok"]  # waiting what Slack said is enough


def test_tier_1_allows_one_call_a_minute(clock, monkeypatch):
    monkeypatch.setitem(TIERS, "team.accessLogs", 1)
    limits = RateLimits(clock.now)
    assert limits.check("team.accessLogs") is None
    assert limits.check("team.accessLogs") == 60
    clock.advance(59)
    assert limits.check("team.accessLogs") == 1
    clock.advance(1)
    assert limits.check("team.accessLogs") is None


def test_post_message_is_paced_per_channel_with_short_bursts(limited, clock):
    ws = limited.state
    other = ws.add_channel("other", members=[ws.bot_user_id]).id
    for n in range(3):  # a short burst passes
        assert call(limited, "chat.postMessage", channel=OPS, text=f"burst {n}").json()["ok"]
    refused = call(limited, "chat.postMessage", channel=OPS, text="one too many")
    refused_exactly_as_slack(refused, 1)
    assert not any(m.text == "one too many" for m in ws.messages(OPS))  # Slack did nothing
    assert call(limited, "chat.postMessage", channel=other, text="another channel").json()["ok"]
    clock.advance(1)
    assert call(limited, "chat.postMessage", channel=OPS, text="a second later").json()["ok"]
    refused_exactly_as_slack(call(limited, "chat.postMessage", channel=OPS, text="again"), 1)
    assert limited.limits.refused == {"chat.postMessage": 2}


def test_limits_can_be_turned_off_and_the_env_decides_the_default(clock, monkeypatch):
    with Sandbox(port=0, clock=clock, rate_limits=False) as sb:
        assert all(call(sb, "conversations.list").json()["ok"] for _ in range(30))
    monkeypatch.setenv("SANDBOX_RATE_LIMITS", "on")
    assert Sandbox(clock=clock).limits.enabled
    monkeypatch.setenv("SANDBOX_RATE_LIMITS", "off")
    assert not Sandbox(clock=clock).limits.enabled
    monkeypatch.delenv("SANDBOX_RATE_LIMITS")
    assert Sandbox(clock=clock).limits.enabled  # as Slack: on unless told otherwise


# ---------------------------------------------------------------- the bot's pacing


class FakeTime:
    """The pacer's clock and sleep: sleeping moves the clock (no test waits for real)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def run_in_thread(fn):
    import threading

    result: dict = {}

    def target():
        try:
            result["value"] = fn()
        except Exception as exc:  # handed to the test thread
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(10)
    return result


def test_a_429_pauses_the_method_for_every_thread_of_the_gateway(clock):
    from bot.errors import RateLimited
    from runtime.slack_gateway import SlackGateway, make_client
    from runtime.slack_pacing import Pacer

    fake = FakeTime()
    pacer = Pacer(clock=fake.clock, sleep=fake.sleep, patience=0.5)
    with Sandbox(port=0, clock=clock, rate_limits=False) as sb:
        gateway = SlackGateway(make_client(sb.bot_token, sb.api_url, backoff=0.01, pacer=pacer))
        sb.faults.rate_limit("users.info", count=1, retry_after=30)

        first = run_in_thread(lambda: gateway.person("U0LEAD001"))  # gets the 429, does not wait 30 s
        assert isinstance(first["error"], RateLimited) and first["error"].retry_after == 30
        assert pacer.received_429 == 1 and pacer.paused_for("users.info") == pytest.approx(30)

        calls = len(sb.calls_of("users.info"))
        other = run_in_thread(lambda: gateway.person("U0SPEC001"))  # another thread: paused too
        assert isinstance(other["error"], RateLimited) and other["error"].retry_after == pytest.approx(30)
        assert len(sb.calls_of("users.info")) == calls  # not even tried: Slack would refuse it
        assert gateway.channel_info(OPS)["id"] == OPS  # other methods are not held up

        def patient():
            pacer.set_patience(60)
            return gateway.person("U0SPEC001")

        assert run_in_thread(patient)["value"]["id"] == "U0SPEC001"  # waited out the pause, then asked
        assert fake.slept and fake.slept[-1] == pytest.approx(30)
        assert pacer.received_429 == 1


def test_the_pacer_spaces_calls_to_the_tier_and_per_channel():
    from bot.errors import RateLimited
    from runtime.slack_pacing import PER_MINUTE, Pacer

    fake = FakeTime()
    pacer = Pacer(clock=fake.clock, sleep=fake.sleep, patience=10, share=1.0)
    for _ in range(PER_MINUTE[2] - 1):  # a burst just under Slack's
        pacer.acquire("conversations.create")
    assert fake.slept == []
    pacer.acquire("conversations.create")
    assert fake.slept == [pytest.approx(3.0)]  # then one every 3 s (Tier 2)
    with pytest.raises(RateLimited) as info:
        pacer.acquire("conversations.create", patience=1)
    assert info.value.retry_after == pytest.approx(3.0)
    pacer.acquire("chat.postMessage", "C1")
    pacer.acquire("chat.postMessage", "C2")  # another channel: its own pace
    assert len(fake.slept) == 1
    pacer.acquire("chat.postMessage", "C1")
    assert fake.slept[-1] == pytest.approx(1.0)


# ---------------------------------------------------------------- priorities and deferral


@pytest.fixture
def dispatcher(tmp_path, _migrated_sqlite):
    import shutil

    from bot.clocks.dispatcher import Dispatcher
    from bot.db.engine import Database

    target = tmp_path / "safeguard.db"
    shutil.copyfile(_migrated_sqlite, target)
    db = Database(f"sqlite:///{target}")
    d = Dispatcher(db, workers=1, node="test")
    d.inline = True
    yield d
    d.shutdown()
    db.dispose()


def test_a_page_goes_before_twenty_queued_checklist_updates(dispatcher):
    from datetime import timedelta

    from bot.clocks.now import utcnow
    from bot.clocks.outbox import enqueue

    with dispatcher.db.tx() as session:
        for n in range(20):
            enqueue(session, "refresh_checklist", {"n": n}, not_before=utcnow() - timedelta(seconds=10))
        enqueue(session, "topic", {})
        enqueue(session, "post", {"channel": "C1", "text": "a reminder"})
        enqueue(session, "page_notify", {"page": 1})
    order: list[str] = []
    for kind in ("refresh_checklist", "topic", "post", "page_notify"):
        dispatcher.register(kind, lambda task: order.append(task.kind))
    dispatcher.batch = 1
    dispatcher.tick()
    assert order[:2] == ["page_notify", "post"]
    assert order[2:] == ["refresh_checklist"] * 20 + ["topic"]  # oldest first among equals


def test_a_rate_limited_task_is_put_back_without_using_an_attempt(dispatcher):
    from bot.clocks.now import utcnow
    from bot.clocks.outbox import enqueue
    from bot.db.models import Task
    from bot.errors import RateLimited

    with dispatcher.db.tx() as session:
        enqueue(session, "post", {"channel": "C1", "text": "x"})
    patience: list[str] = []
    dispatcher.before_task = lambda: patience.append("set")

    def limited(task):
        raise RateLimited("chat.postMessage", 7)

    dispatcher.register("post", limited, max_attempts=1)
    before = utcnow()
    dispatcher.tick()
    with dispatcher.db.read() as session:
        task = session.query(Task).one()
        assert task.state == "pending" and task.attempts == 0  # a page keeps every retry it had
        assert 6.5 <= (task.not_before - before).total_seconds() <= 8
    assert patience == ["set"] and dispatcher.deferred == 1


def test_waiting_for_a_channel_uses_no_attempt_but_a_failure_does(dispatcher):
    """A sightings summary waited 2 s at a time for a channel that Slack's limits made late: 40
    waits used its 40 attempts and it died, so the sightings were never told."""
    from datetime import timedelta

    from bot.clocks.dispatcher import Retry
    from bot.clocks.now import utcnow
    from bot.clocks.outbox import enqueue
    from bot.db.models import Task

    with dispatcher.db.tx() as session:
        enqueue(session, "post", {"channel": "C1", "text": "x"})
    outcome = {"raise": Retry("waiting for the incident channel", timedelta(0), counts=False)}

    def handler(task):
        raise outcome["raise"]

    dispatcher.register("post", handler, max_attempts=2)
    for _ in range(5):
        dispatcher.tick()
    with dispatcher.db.read() as session:
        task = session.query(Task).one()
        assert task.state == "pending" and task.attempts == 0
    outcome["raise"] = Retry("Slack said no", timedelta(0))
    for _ in range(3):
        with dispatcher.db.tx() as session:  # due again at once
            session.query(Task).update({"not_before": utcnow() - timedelta(seconds=1)})
        dispatcher.tick()
    with dispatcher.db.read() as session:
        assert session.query(Task).one().state == "dead"
