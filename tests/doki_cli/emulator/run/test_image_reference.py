"""The emulator keeps its own copy of Docker's image-reference grammar (it imports nothing of doki's CLI); the copy and
doki's must stay one grammar, or `doki deploy` and the emulator would disagree on what an image name is."""

from __future__ import annotations

import pytest

from doki_cli import imageref
from doki_cli.emulator.run import validation

GOOD = [
    "us-central1-docker.pkg.dev/proj/repo/api:v1",
    "gcr.io/proj/api@sha256:" + "a" * 64,
    "localhost:5000/api:latest",
    "api",
    "a/b__c/d-e:tag_1.2",
]
BAD = ["", "API:v1", "repo/api:", "repo//api", "api:" + "x" * 129, "api@sha256:abc", "-api"]


def test_the_emulators_grammar_is_doki_clis() -> None:
    assert validation.IMAGE_REFERENCE.pattern == imageref.IMAGE_REFERENCE.pattern


@pytest.mark.parametrize("reference", GOOD)
def test_a_reference_both_accept(reference: str) -> None:
    assert validation.IMAGE_REFERENCE.fullmatch(reference)
    assert imageref.IMAGE_REFERENCE.fullmatch(reference)


@pytest.mark.parametrize("reference", BAD)
def test_a_reference_both_refuse(reference: str) -> None:
    assert not validation.IMAGE_REFERENCE.fullmatch(reference)
    assert not imageref.IMAGE_REFERENCE.fullmatch(reference)
