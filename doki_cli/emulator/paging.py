"""List paging the way Google's List methods do it (AIP-158): a page size, and an opaque token naming where the next
page starts. The emulated List methods page here, but for the two below.

The token carries the sort key of the last item returned rather than an offset, so a resource created or deleted
between two page requests neither repeats nor skips an item on the pages that follow. It also carries a check of that
key, so a token the emulator did not issue is refused as Google refuses one (INVALID_ARGUMENT; AIP-158: "the page
token is opaque", and Google's services reject a token that is not one of theirs) rather than read as a key. Each API
keeps its own sizes and the words of its refusals.

Two APIs page their own way: Cloud Logging, whose page of entries also ends at a response size and whose token
carries the order it was issued for (its list of logs shares that token encoding), and Cloud Storage, whose objects
fold into prefixes before they are paged.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from doki_cli.emulator.errors import invalid_argument

T = TypeVar("T")


@dataclass(frozen=True)
class Paging:
    """How one API pages its lists: its default and largest page sizes, and its refusals of a bad size or token
    (`{size}` and `{token}` in them stand for what the request sent)."""

    default_size: int
    max_size: int
    bad_size: str
    bad_page: str = "Invalid page token: {token!r}."
    # A larger size is cut to max_size (AIP-158: a page may hold fewer than asked), unless the API refuses it.
    refuse_above_max: bool = False

    def page(
        self,
        items: Iterable[T],
        key: Callable[[T], str],
        page_size: int,
        page_token: str,
        *,
        descending: bool = False,
    ) -> tuple[list[T], str]:
        """One page of `items`, sorted here by `key`, and the token of the next page ("" on the last page)."""
        if page_size < 0 or (self.refuse_above_max and page_size > self.max_size):
            raise invalid_argument(self.bad_size.format(size=page_size))
        size = min(page_size or self.default_size, self.max_size)
        ordered = sorted(items, key=key, reverse=descending)
        if page_token:
            after = self._decode(page_token)
            ordered = [item for item in ordered if (key(item) < after if descending else key(item) > after)]
        chosen = ordered[:size]
        next_token = _encode(key(chosen[-1])) if len(ordered) > size else ""
        return chosen, next_token

    def _decode(self, token: str) -> str:
        try:
            after, _, check = base64.urlsafe_b64decode(token.encode()).decode().rpartition(_SEPARATOR)
        except ValueError:  # not base64 (binascii.Error), or not text (UnicodeDecodeError)
            after, check = "", ""
        if not check or check != _check(after):
            raise invalid_argument(self.bad_page.format(token=token))
        return after


# Between the key and its check: a character no resource name holds.
_SEPARATOR = "\x00"


def _check(key: str) -> str:
    """What a token says of its key: made here alone, so a token with another is not one the emulator issued."""
    return hashlib.sha256(f"doki-emulator page token:{key}".encode()).hexdigest()[:16]


def _encode(key: str) -> str:
    return base64.urlsafe_b64encode(f"{key}{_SEPARATOR}{_check(key)}".encode()).decode()
