"""What the Dockerfile promises without building it."""

from __future__ import annotations

import re

from tests.helpers import REPO


def test_the_default_base_image_is_the_python_slim_bookworm_image_pinned_by_digest() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    default = re.search(r"^ARG BASE_IMAGE=(\S+)$", dockerfile, re.MULTILINE)
    assert default is not None, "the Dockerfile must give BASE_IMAGE a default"
    assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", default.group(1))


def test_every_stage_builds_on_the_replaceable_base() -> None:
    stages = re.findall(r"^FROM (\S+)", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    assert stages and set(stages) == {"${BASE_IMAGE}"}
