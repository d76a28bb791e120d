"""``safeguard check``: every problem of the organisation config and of every playbook, the
playbooks checked against the config's roles. The CLI prints them and exits 1 if any."""

from __future__ import annotations

import os
from pathlib import Path

from .config import load_config
from .playbooks import collect_playbooks
from .yamlsrc import ConfigError, Problem, load_yaml


def check(
    config_path: str | os.PathLike[str] | None,
    playbooks_dir: str | os.PathLike[str] | None = None,
) -> list[Problem]:
    """Config problems, then playbook problems; empty when all is well.

    ``config_path`` None checks against the empty config (any role name is accepted);
    ``playbooks_dir`` None means the shipped playbooks. When the config itself is invalid,
    the playbooks are still checked against the role names it defines, if it can be parsed.
    """
    if playbooks_dir is None:
        from .settings import SHIPPED_PLAYBOOKS

        playbooks_dir = SHIPPED_PLAYBOOKS
    problems: list[Problem] = []
    try:
        roles: list[str] | None = load_config(config_path).role_names
    except ConfigError as exc:
        problems.extend(exc.problems)
        roles = _role_names(config_path)
    _, playbook_problems = collect_playbooks(playbooks_dir, roles)
    problems.extend(playbook_problems)
    return problems


def _role_names(config_path: str | os.PathLike[str] | None) -> list[str] | None:
    """The role names of a config that failed validation, when its YAML at least parses."""
    if config_path is None:
        return None
    try:
        data = load_yaml(Path(config_path)).data
    except ConfigError:
        return None
    roles = data.get("roles") if isinstance(data, dict) else None
    if not isinstance(roles, dict):
        return None
    return sorted(name for name in roles if isinstance(name, str))
