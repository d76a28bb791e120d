"""The sandbox's Slack Web API: one module per method family, merged into METHODS."""

from __future__ import annotations

from . import auth, bookmarks, chat, conversations, files, pins, users, views
from .base import ApiContext, ApiError, Args

METHODS = {
    **auth.METHODS,
    **bookmarks.METHODS,
    **chat.METHODS,
    **conversations.METHODS,
    **files.METHODS,
    **pins.METHODS,
    **users.METHODS,
    **views.METHODS,
}

__all__ = ["METHODS", "ApiContext", "ApiError", "Args"]
