"""The one registry of pager kinds: each kind's config model (its `pagers.NAME` section) and how
to build its backend sit next to the backend (bot/paging/pagerduty.py, email.py, webhook.py);
this dict lists them. The organisation config's `pagers:` sections and the `notify:` choices
come from it, so adding a pager is a module with a `KIND` and a line here.

Secrets come from the environment, named by ``*_env`` keys; a section may be the pydantic model,
a plain dict or an object with attributes (``from`` may be spelled ``from_``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.paging import email, pagerduty, webhook
from bot.paging._config import _get
from bot.paging.base import Backend, PagerKind
from bot.paging.render import PageRenderer

PAGER_KINDS: dict[str, PagerKind] = {kind.name: kind for kind in (pagerduty.KIND, email.KIND, webhook.KIND)}


def build_backends(
    pagers: Any,
    env: Mapping[str, str],
    *,
    templates_dir: str | Path | None = None,
) -> dict[str, Backend]:
    """The backends of the pagers present in ``pagers``, by kind name.

    Raises :class:`PagerConfigError` (a ``ValueError``) naming the field or the environment
    variable when something is missing or wrong. ``templates_dir`` overrides page templates.
    """
    backends: dict[str, Backend] = {}
    if pagers is None:
        return backends
    renderer = PageRenderer(templates_dir)
    for name, kind in PAGER_KINDS.items():
        section = _get(pagers, name)
        if section is not None:
            backends[name] = kind.build(section, f"pagers.{name}", env, renderer)
    return backends
