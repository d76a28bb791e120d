"""What every API request passes before a route sees it: the token, the rate limit, and the body
(JSON only, 64 KiB at most, nothing that looks like file data). Errors are `ApiError`s, answered
as `{"error": CODE, "message": TEXT}`."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

MAX_BODY = 64 * 1024
MAX_BLOB = 4 * 1024  # a string longer than this that looks like base64 is file data
MAX_DEPTH = 32
_BASE64ISH = re.compile(r"[A-Za-z0-9+/_\-\s]+={0,2}\s*")
# Bounded pieces only (a data: URI's header is short): no input makes this backtrack for long.
_DATA_URI = re.compile(r"(?i)\bdata:(?:[a-z0-9!#$&^_.+\-]{1,100}/[a-z0-9!#$&^_.+\-]{1,100})?(?:;[^,;\s]{1,100}){0,10},")


@dataclass
class ApiError(Exception):
    status: int
    code: str
    message: str
    field: str | None = None
    retry_after: int | None = None

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **({"field": self.field} if self.field else {})}


def read_json(request) -> Any:
    """The request's JSON body; 415 when it is not JSON, 413 when it is over 64 KiB (by its
    Content-Length, or by what was actually sent), 400 when it does not parse."""
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json (content is never accepted).")
    length = request.content_length
    if length is not None and length > MAX_BODY:
        raise ApiError(413, "too_large", f"The body is over {MAX_BODY // 1024} KiB; the API takes references, never content.")
    raw = request.stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise ApiError(413, "too_large", f"The body is over {MAX_BODY // 1024} KiB; the API takes references, never content.")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, "bad_request", "The body is not valid JSON (UTF-8).") from None


def refuse_content(value: Any, path: str = "", depth: int = 0, _seen: list[int] | None = None) -> None:
    """422 naming the field when a string looks like file data (a `data:` URI anywhere, over
    4 KiB of base64, or base64 split into fields each under the length limits: see
    `_data_words`) or cannot be stored (NUL, lone surrogates); nothing is stored then."""
    seen = [0] if _seen is None else _seen  # base64 data words met so far in the whole body
    if depth > MAX_DEPTH:
        raise ApiError(400, "bad_request", f"The body is nested deeper than {MAX_DEPTH} levels.")
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            _check_string(key, where, seen)
            refuse_content(item, where, depth + 1, seen)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            refuse_content(item, f"{path}[{index}]", depth + 1, seen)
    elif isinstance(value, str):
        _check_string(value, path or "body", seen)


# Every field is shorter than MAX_BLOB, so file data comes split: a note of 3,000 base64
# characters, a few fields of 500. What gives it away is its words: long runs of the base64
# alphabet that are not hex (hashes are hex; a PhotoDNA hash has its own field and pattern).
_DATA_WORD = re.compile(r"[A-Za-z0-9+/_\-]{40,}={0,2}")
_HEX = re.compile(r"[0-9a-fA-F]+")
MAX_DATA_WORDS = 1024  # characters of such words in one string
MAX_DATA_WORDS_BODY = MAX_BLOB  # and in the whole body (50 long content ids stay under it)
_PHOTODNA = re.compile(r"evidence\[\d+\]\.photodna")


def _data_words(text: str) -> int:
    """Characters of `text` in whitespace-separated words that look like base64 data."""
    return sum(len(word) for word in text.split() if _DATA_WORD.fullmatch(word) and not _HEX.fullmatch(word))


def _check_string(text: str, where: str, seen: list[int] | None = None) -> None:
    shown = where[:100]
    if _DATA_URI.search(text):
        raise ApiError(422, "content_refused", f"`{shown}` holds a data: URI. Content is never accepted: "
                                                 "send hashes and content ids.", shown)
    if len(text) > MAX_BLOB and _BASE64ISH.fullmatch(text):
        raise ApiError(422, "content_refused", f"`{shown}` looks like file data (over 4 KiB of base64). Content is "
                                                 "never accepted: send hashes and content ids.", shown)
    if seen is not None and not _PHOTODNA.fullmatch(where) and len(text) >= 40:
        found = _data_words(text)
        seen[0] += found
        if found > MAX_DATA_WORDS or seen[0] > MAX_DATA_WORDS_BODY:
            raise ApiError(422, "content_refused", f"`{shown}` looks like file data (base64, split or not). Content "
                                                     "is never accepted: send hashes and content ids.", shown)
    if "\x00" in text:
        raise ApiError(422, "invalid", f"`{shown}` holds a NUL character.", shown)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(422, "invalid", f"`{shown}` is not valid Unicode (a lone surrogate).", shown) from None


def bearer(request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "Send `Authorization: Bearer TOKEN` (make one with `safeguard token create`).")
    return token.strip()


class TokenBuckets:
    """Per-token rate limit, in this process (each replica limits on its own): `rate` requests
    a second on average, bursts of `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, name: str) -> None:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(name, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[name] = (tokens, now)
                wait = max(1, int((1 - tokens) / self.rate + 0.999))
                raise ApiError(429, "rate_limited", f"Too many requests for this token; retry in {wait} s.",
                               retry_after=wait)
            self._buckets[name] = (tokens - 1, now)
