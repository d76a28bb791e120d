"""Turning domain answers and errors into what a person sees, in one place."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from bot.errors import DomainError

log = logging.getLogger(__name__)

SORRY = ":warning: Something went wrong on our side; nothing you did was lost. Try again, and tell the bot's maintainers if it persists."


def ephemeral(text: str, blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"response_type": "ephemeral", "text": text}
    if blocks is not None:
        body["blocks"] = blocks
    return body


def guarded(listener: Callable[..., None]) -> Callable[..., None]:
    """Domain errors become an ephemeral message; anything else is logged and apologised for.

    Works for listeners that may or may not have acked yet: before the ack the message rides
    on the ack, after it on `respond` (the response_url)."""

    @functools.wraps(listener)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        ack, respond = kwargs["ack"], kwargs.get("respond")
        state = {"acked": False}

        def tracking_ack(*a: Any, **kw: Any) -> Any:
            state["acked"] = True
            return ack(*a, **kw)

        kwargs["ack"] = tracking_ack
        try:
            listener(*args, **kwargs)
        except DomainError as err:
            _tell(state["acked"], ack, respond, f":no_entry: {err}")
        except Exception:
            log.exception("listener %s failed", listener.__name__)
            _tell(state["acked"], ack, respond, SORRY)
        else:
            if not state["acked"]:
                ack()

    return wrapper


def _tell(acked: bool, ack: Callable[..., Any], respond: Callable[..., Any] | None, text: str) -> None:
    if not acked:
        ack(text=text)
    elif respond is not None:
        try:
            respond(text=text, response_type="ephemeral", replace_original=False)
        except Exception:
            log.exception("could not tell the user: %s", text)


def respond_later(core, respond: Callable[..., Any], work: Callable[[], str]) -> None:
    """Run `work` after the ack on the core's after-ack threads and post what it returns (or
    its error) as an ephemeral message on the response_url."""

    def run() -> None:
        try:
            text = work()
        except DomainError as err:
            text = f":no_entry: {err}"
        except Exception:
            log.exception("work after the ack failed")
            text = SORRY
        try:
            respond(text=text, response_type="ephemeral", replace_original=False)
        except Exception:
            log.exception("could not answer on the response_url: %s", text)

    core.after_ack.submit(run)
