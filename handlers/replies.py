"""Turning domain answers and errors into what a person sees, in one place."""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from bot.render import fit

from .errors import explain

log = logging.getLogger(__name__)

REPLY_TEXT = 3_900  # Slack shows 4,000 characters of a message; a reply never needs more


def ephemeral(text: str, blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"response_type": "ephemeral", "text": fit(text or "", REPLY_TEXT)}
    if blocks is not None:
        body["blocks"] = blocks
    return body


WORKING = ":hourglass_flowing_sand: Working on it; the answer follows here in a moment."


class _Watcher:
    """One thread that calls each `fn` when its time comes, instead of a thread per request."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Callable[[], None]]] = []  # a heap, soonest first
        self._added = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, fn: Callable[[], None], when: float) -> None:
        with self._cond:
            heapq.heappush(self._due, (when, next(self._added), fn))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="safeguard-ack-deadline", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due:
                    self._cond.wait()
                when, _, fn = self._due[0]
                wait = when - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._due)
            try:
                fn()
            except Exception:
                log.exception("the ack deadline failed")


_watcher = _Watcher()


def _watch(fn: Callable[[], None], delay: float, since: float | None = None) -> None:
    """Call `fn` `delay` s after `since` (a time.monotonic() value; default now)."""
    _watcher.add(fn, (time.monotonic() if since is None else since) + delay)


class Answer:
    """A listener's ack, made safe: it reaches Slack once, and never later than `deadline`.

    Slack gives up on an ack after 3 s and shows the user an error, which invites a second try
    that would do the work twice (a second page to Legal). When the work is slower than the
    deadline (a busy database), Slack gets a short "working on it" in time and what would
    have ridden on the ack follows on the response_url."""

    def __init__(self, ack: Callable[..., Any], respond: Callable[..., Any] | None,
                 deadline: float | None, *, placeholder: dict[str, Any] | None = None) -> None:
        self._ack, self._respond = ack, respond
        # What the ack says when the deadline comes first (a modal: nothing, so it closes).
        self._placeholder = {"text": WORKING, "response_type": "ephemeral"} if placeholder is None else placeholder
        self._lock = threading.Lock()
        self.acked = self.late = False
        if deadline and respond is not None:
            # Counted from the request's arrival (TimedAck knows it), not from when a listener
            # thread got to it: on a busy machine that can be a second later, and Slack counts 3 s
            # from when it sent the request.
            _watch(self._in_time, deadline, getattr(ack, "arrived", None))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            first, self.acked = not self.acked, True
        if first:
            return self._ack(*args, **kwargs)
        text, blocks = kwargs.get("text", args[0] if args else None), kwargs.get("blocks")
        if self.late and (text or blocks):
            self._say(text or "", blocks)
        return None

    def _in_time(self) -> None:
        with self._lock:
            if self.acked:
                return
            self.acked = self.late = True
        self._ack(**self._placeholder)

    def _say(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        if self._respond is None:
            return
        try:
            self._respond(text=fit(text, REPLY_TEXT), blocks=blocks, response_type="ephemeral", replace_original=False)
        except Exception as err:  # no response_url, or Slack refused it: one line (never the text)
            log.info("could not answer on the response_url (%s)", type(err).__name__)

    def tell(self, text: str) -> None:
        """An answer for the user: on the ack while there is still one, else on the response_url."""
        with self._lock:
            answered = self.acked and not self.late
        if answered:
            self._say(text)
        else:
            self(text=text)

    def finish(self) -> None:
        self()  # a listener that said nothing is still acknowledged (the watch then finds it acked)


def _respond_or_log(respond: Callable[..., Any]) -> Callable[..., Any]:
    def say(*args: Any, **kwargs: Any) -> Any:
        try:
            return respond(*args, **kwargs)
        except Exception as err:  # no response_url, one that is not a URL, or Slack refused it: one line
            log.info("could not answer on the response_url (%s)", type(err).__name__)
            return None

    return say


def answering(listener: Callable[..., None] | None = None, *, deadline: float | None = None) -> Any:
    """A listener whose answer reaches Slack in time and whose errors are answered (see
    `errors.explain`), before the ack on the ack, after it on the response_url. With
    `deadline`, the ack is sent by then even while the listener is still working (`Answer`)."""
    if listener is None:
        return functools.partial(answering, deadline=deadline)

    @functools.wraps(listener)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        answer = Answer(kwargs["ack"], kwargs.get("respond"), deadline)
        kwargs["ack"] = answer
        if kwargs.get("respond") is not None:  # the work is done by then: a failed answer is no error of it
            kwargs["respond"] = _respond_or_log(kwargs["respond"])
        try:
            listener(*args, **kwargs)
        except Exception as err:
            answer.tell(explain(err, where=listener.__name__).text)
        finally:
            answer.finish()

    return wrapper
