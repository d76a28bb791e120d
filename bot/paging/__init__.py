"""Paging backends: deliver one page notice, once, over PagerDuty, email or a signed webhook.

Retrying, escalation and bookkeeping live elsewhere; a backend either returns (the notice was
accepted) or raises :class:`~bot.paging.base.DeliveryError` saying whether trying again may help.
Importing this package has no side effects.
"""

from bot.paging.base import Backend, DeliveryError, PageNotice, PagerConfigError, page_dedup_key

__all__ = ["Backend", "DeliveryError", "PageNotice", "PagerConfigError", "page_dedup_key"]
