"""Build the configured paging backends from the ``pagers`` section of the organisation config.

The section may be a plain dict or an object with attributes (the pydantic config models);
each pager may be either too. ``from`` may be spelled ``from`` or ``from_``. Timeouts may be
a ``timedelta`` or seconds. Secrets come from the environment, named by ``*_env`` keys.
Pager names other than pagerduty / email / webhook (e.g. ``slack``) are left to their owners.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.paging.base import Backend, PagerConfigError
from bot.paging.email import EmailBackend
from bot.paging.pagerduty import DEFAULT_EVENTS_URL, PagerDutyBackend
from bot.paging.render import PageRenderer
from bot.paging.webhook import WebhookBackend

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


def _build(where: str, cls: Any, **kwargs: Any) -> Any:
    try:
        return cls(**kwargs)
    except PagerConfigError as exc:
        if exc.message.startswith(where):
            raise
        raise PagerConfigError(f"{where}: {exc.message}") from exc


def build_backends(
    pagers: Any,
    env: Mapping[str, str],
    *,
    templates_dir: str | Path | None = None,
) -> dict[str, Backend]:
    """``{"pagerduty": …, "email": …, "webhook": …}`` for the pagers present in ``pagers``.

    Raises :class:`PagerConfigError` (a ``ValueError``) naming the field or the environment
    variable when something is missing or wrong. ``templates_dir`` overrides page templates.
    """
    backends: dict[str, Backend] = {}
    if pagers is None:
        return backends
    renderer = PageRenderer(templates_dir)

    section = _get(pagers, "pagerduty")
    if section is not None:
        where = "pagers.pagerduty"
        backends["pagerduty"] = _build(
            where,
            PagerDutyBackend,
            events_url=str(_get(section, "events_url", default=DEFAULT_EVENTS_URL)),
            routing_key=_secret(section, where, "routing_key_env", env),
            timeout=_timeout(_get(section, "timeout"), where),
            renderer=renderer,
        )

    section = _get(pagers, "email")
    if section is not None:
        where = "pagers.email"
        backends["email"] = _build(
            where,
            EmailBackend,
            smtp_url=_secret(section, where, "smtp_url_env", env),
            from_addr=str(_required(section, where, "from", "from_")),
            timeout=_timeout(_get(section, "timeout"), where),
            renderer=renderer,
        )

    section = _get(pagers, "webhook")
    if section is not None:
        where = "pagers.webhook"
        backends["webhook"] = _build(
            where,
            WebhookBackend,
            url=str(_required(section, where, "url")),
            secret=_secret(section, where, "secret_env", env),
            timeout=_timeout(_get(section, "timeout"), where),
            renderer=renderer,
        )
    return backends
