"""The HTTP API for detection pipelines and case tools (`/api/v1`). Like `handlers/` for Slack,
its routes parse a request, call one core function with the acting token (`api:NAME`), and
render the result; the core decides what a token may do (bot.policy, through its scopes)."""

from .routes import register_api

__all__ = ["register_api"]
