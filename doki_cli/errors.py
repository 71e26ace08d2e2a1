"""The one error type every command raises: a stable code for scripts, a message, and a hint that says the fix."""

from __future__ import annotations


class DokiError(Exception):
    """A failure the user can act on. Rendered in one place (`doki_cli.output`), human or JSON."""

    def __init__(
        self,
        code: str,
        message: str,
        hint: str | None = None,
        *,
        exit_code: int = 1,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.exit_code = exit_code
        # What the command had done when it failed (e.g. a release's summary): JSON output carries it beside the error.
        self.details = details or {}

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "hint": self.hint}
