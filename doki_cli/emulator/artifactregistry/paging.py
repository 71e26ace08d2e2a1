"""List paging the way Google's List methods do it: a page size, and an opaque token naming where the next page starts.

The token carries the sort key of the last item returned rather than an offset, so a resource created or deleted
between two page requests neither repeats nor skips an item on the pages that follow. Shared by Artifact Registry and
Cloud Build.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import TypeVar

from doki_cli.emulator.errors import invalid_argument

T = TypeVar("T")


def page(
    items: Sequence[T],
    key: Callable[[T], str],
    *,
    page_size: int,
    page_token: str,
    default_size: int,
    max_size: int,
    descending: bool = False,
) -> tuple[list[T], str]:
    """One page of `items` (sorted here by `key`) and the token of the next page ("" on the last page)."""
    if page_size < 0:
        raise invalid_argument(f"page_size must not be negative, got {page_size}")
    size = min(page_size or default_size, max_size)
    ordered = sorted(items, key=key, reverse=descending)
    if page_token:
        after = _decode(page_token)
        ordered = [item for item in ordered if (key(item) < after if descending else key(item) > after)]
    chosen = ordered[:size]
    next_token = _encode(key(chosen[-1])) if len(ordered) > size else ""
    return chosen, next_token


def _encode(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def _decode(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid_argument(f"Invalid page token: {token!r}.") from None
