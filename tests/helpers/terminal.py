"""A CliRunner whose stdin is a terminal, for the questions doki asks only when someone can answer them.

Commands decide they may ask with `sys.stdin.isatty()`; CliRunner's stdin is a byte buffer that never is one. This
runner keeps that buffer (so `input=` still holds the answers) and only says yes to `isatty()`, as a person's
terminal does: the commands run unchanged, nothing of theirs is patched.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from tests.helpers import CliRunner


class _TerminalStdin:
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def isatty(self) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._stream)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class TerminalRunner(CliRunner):
    @contextlib.contextmanager
    def isolation(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        with super().isolation(*args, **kwargs) as streams:
            sys.stdin = _TerminalStdin(sys.stdin)  # restored with the rest when the isolation ends
            yield streams
