"""The one paging helper every emulated List method uses: sizes, tokens that survive changes between pages, and each
API's own refusals."""

from __future__ import annotations

import pytest

from doki_cli.emulator.errors import ApiError
from doki_cli.emulator.paging import Paging
from doki_cli.emulator.secretmanager.state import PAGING as SECRET_MANAGER
from doki_cli.emulator.serviceusage.state import PAGING as SERVICE_USAGE

PAGING = Paging(default_size=2, max_size=3, bad_size="page_size must not be negative, got {size}.")


def every_page(items: list[str], page_size: int, *, descending: bool = False) -> list[list[str]]:
    pages, token = [], ""
    while True:
        page, token = PAGING.page(items, str, page_size, token, descending=descending)
        pages.append(page)
        if not token:
            return pages


def test_pages_follow_the_key_order_at_the_default_size_and_at_most_the_largest() -> None:
    items = ["c", "a", "e", "b", "d"]
    assert every_page(items, 0) == [["a", "b"], ["c", "d"], ["e"]]
    assert every_page(items, 1000) == [["a", "b", "c"], ["d", "e"]]
    assert every_page(items, 0, descending=True) == [["e", "d"], ["c", "b"], ["a"]]


def test_an_item_deleted_or_added_between_pages_neither_repeats_nor_skips_another() -> None:
    first, token = PAGING.page(["a", "b", "c", "d"], str, 2, "")
    assert first == ["a", "b"]
    assert PAGING.page(["b", "c", "d"], str, 2, token) == (["c", "d"], "")
    assert PAGING.page(["0", "a", "b", "c", "d"], str, 2, token) == (["c", "d"], "")


def test_a_token_the_emulator_did_not_issue_is_refused_though_it_decodes() -> None:
    import base64

    _, token = PAGING.page(["a", "b", "c"], str, 1, "")
    assert PAGING.page(["a", "b", "c"], str, 1, token) == (["b"], PAGING.page(["a", "b", "c"], str, 2, "")[1])
    made_up = base64.urlsafe_b64encode(b"abc").decode()  # decodes, but no page of ours ended there
    tampered = base64.urlsafe_b64encode(base64.urlsafe_b64decode(token).replace(b"a", b"b", 1)).decode()
    for bad in (made_up, tampered):
        with pytest.raises(ApiError) as refused:
            PAGING.page(["a", "b", "c"], str, 1, bad)
        assert (refused.value.status_name, refused.value.message) == (
            "INVALID_ARGUMENT",
            f"Invalid page token: {bad!r}.",
        )


def test_a_bad_size_or_token_is_refused_in_the_api_s_words() -> None:
    refusals = [
        (PAGING, -1, "", "page_size must not be negative, got -1."),
        (PAGING, 0, "a", "Invalid page token: 'a'."),
        (SECRET_MANAGER, -1, "", "page_size must not be negative."),
        (SECRET_MANAGER, 0, "a", "Invalid page token [a]."),
        (SERVICE_USAGE, 201, "", "page_size must be between 0 and 200."),
        (SERVICE_USAGE, 0, "a", 'Invalid page_token "a".'),
    ]
    for paging, size, token, message in refusals:
        with pytest.raises(ApiError) as refused:
            paging.page(["x"], str, size, token)
        assert (refused.value.status_name, refused.value.message) == ("INVALID_ARGUMENT", message)
