"""Settings from the environment (names are part of the public contract, see README)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_PLAYBOOKS = REPO_ROOT / "playbooks"
SHIPPED_TEMPLATES = REPO_ROOT / "templates"


class Settings(BaseModel):
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    database_url: str = "sqlite:///safeguard.db"
    config_path: Path | None = None
    playbooks_dir: Path = SHIPPED_PLAYBOOKS
    templates_dir: Path = SHIPPED_TEMPLATES
    port: int = 3000
    # Not part of the contract: tuning, and what tests need to build many bots in one process.
    listener_workers: int = 32
    # A command still working after this many seconds is acked with "working on it" (Slack's
    # limit is 3 s, network included) and answered on its response_url.
    ack_deadline: float = Field(default=2.0, gt=0, le=2.5)
    db_pool_size: int = Field(default=10, ge=1)  # PostgreSQL: up to twice this many connections
    task_workers: int = 32
    sweep_seconds: float = Field(default=1.0, gt=0)
    slack_retry_backoff: float = Field(default=0.5, gt=0)  # slack_sdk's 5xx backoff factor
    task_first_retry: float = Field(default=2.0, gt=0)  # seconds before an outbox task's first retry
    # Slack pacing (runtime/slack_pacing.py): how long an outbox task / a listener may wait for
    # its slot under Slack's rate limits; a task that would wait longer goes back to the outbox.
    slack_pacing: bool = True  # off only against a Slack stand-in without limits (the tests' sandbox)
    slack_task_patience: float = Field(default=0.5, ge=0)
    slack_listener_patience: float = Field(default=5.0, ge=0)
    # How often the members of open incident channels are checked against Slack (a missed
    # member_left_channel event must not leave someone able to act for long).
    members_sync_seconds: float = Field(default=30.0, gt=0)
    link_secret: str | None = None  # signs timeline links; defaults to the signing secret
    public_url: str | None = None  # where the bot's own pages are reachable (timeline links)
    # The HTTP API's per-token rate limit (in each process): requests a second, and the burst.
    api_rate: float = Field(default=20.0, gt=0)
    api_burst: int = Field(default=200, ge=1)

    @field_validator("slack_api_url")
    @classmethod
    def _ends_with_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> Settings:
        env = os.environ if env is None else env
        config = env.get("SAFEGUARD_CONFIG")
        if config is None and Path("safeguard.yaml").exists():
            config = "safeguard.yaml"
        values = {
            "slack_bot_token": env.get("SLACK_BOT_TOKEN"),
            "slack_signing_secret": env.get("SLACK_SIGNING_SECRET"),
            "slack_app_token": env.get("SLACK_APP_TOKEN"),
            "slack_api_url": env.get("SLACK_API_URL", "https://slack.com/api/"),
            "database_url": env.get("DATABASE_URL", "sqlite:///safeguard.db"),
            "config_path": config,
            "playbooks_dir": env.get("SAFEGUARD_PLAYBOOKS", SHIPPED_PLAYBOOKS),
            "port": env.get("PORT", 3000),
            "public_url": env.get("SAFEGUARD_PUBLIC_URL"),
            "api_rate": env.get("SAFEGUARD_API_RATE"),
            "api_burst": env.get("SAFEGUARD_API_BURST"),
            # off only against a Slack stand-in that has no limits (see runtime/slack_pacing.py)
            "slack_pacing": env.get("SAFEGUARD_SLACK_PACING"),
        }
        values.update(overrides)
        return cls(**{k: v for k, v in values.items() if v is not None})
