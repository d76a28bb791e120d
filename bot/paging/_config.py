"""Reading a pager's config section (a pydantic model, a dict, or any object with attributes) and
its secrets from the environment, with errors that name the field or the variable."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from bot.paging.base import PagerConfigError

DEFAULT_TIMEOUT = 10.0
_MISSING = object()


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if isinstance(obj, Mapping):
            value = obj.get(name, _MISSING)
        else:
            value = getattr(obj, name, _MISSING)
        if value is not _MISSING and value is not None:
            return value
    return default


def _timeout(value: Any, where: str) -> float:
    if value is None:
        return DEFAULT_TIMEOUT
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    else:
        try:
            seconds = float(value)
        except (TypeError, ValueError) as exc:
            raise PagerConfigError(f"{where}.timeout must be seconds or a duration") from exc
    if seconds <= 0:
        raise PagerConfigError(f"{where}.timeout must be positive")
    return seconds


def _required(section: Any, where: str, *names: str) -> Any:
    value = _get(section, *names)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise PagerConfigError(f"{where}.{names[0]} is required")
    return value


def _secret(section: Any, where: str, key: str, env: Mapping[str, str]) -> str:
    var = str(_required(section, where, key)).strip()
    value = env.get(var)
    if value is None or not value.strip():
        raise PagerConfigError(
            f"{where}.{key}: environment variable {var} is not set"
            if value is None
            else f"{where}.{key}: environment variable {var} is empty"
        )
    return value.strip()


def build_checked(where: str, cls: Any, **kwargs: Any) -> Any:
    try:
        return cls(**kwargs)
    except PagerConfigError as exc:
        if exc.message.startswith(where):
            raise
        raise PagerConfigError(f"{where}: {exc.message}") from exc
