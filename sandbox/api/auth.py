"""auth.*"""

from __future__ import annotations

from typing import Any

from .base import ApiContext


def test(ctx: ApiContext) -> dict[str, Any]:
    ws = ctx.workspace
    bot = ws.users[ws.bot_user_id]
    return {
        "url": ctx.base_url,
        "team": ws.team_name,
        "user": bot.name,
        "team_id": ws.team_id,
        "user_id": bot.id,
        "bot_id": ws.bot_id,
        "app_id": ws.app_id,
        "is_enterprise_install": False,
    }


METHODS = {"auth.test": test}
