"""What every command that changes the service shares: its plan shown, `--dry-run`, and the confirmation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from doki_cli.errors import Code, DokiError

if TYPE_CHECKING:
    from doki_cli.context import App
    from doki_cli.deploy.planner import EditPlan, Plan

# `--dry-run` exit codes, as terraform's detailed exit code: scripts can tell "up to date" from "would change".
DRY_RUN_NO_CHANGES = 0
DRY_RUN_CHANGES = 2


def review(app: App, plan: Plan | EditPlan, *, dry_run: bool, yes: bool, then: list[str] | None = None) -> None:
    """Show `plan`. Under --dry-run that is all, with what would follow it (`then`): the command ends with exit 0
    when it would change nothing, 2 when it would. Otherwise a change needs a yes: --yes, or an answer at a
    terminal; where nobody can answer (no terminal, or --json) it is refused, with nothing changed. An edit of a
    service a release holds is refused, as a deploy is."""
    import time

    from doki_cli.deploy.executor import plan_data, render_plan
    from doki_cli.deploy.lock import blocked_by_release
    from doki_cli.deploy.planner import EditPlan

    render_plan(app.output, plan)
    if dry_run:
        for line in then or []:
            app.output.line(f"  then {line}", style="dim")
        app.output.data({"plan": plan_data(plan), **({"then": then} if then is not None else {})})
        raise typer.Exit(DRY_RUN_NO_CHANGES if plan.empty else DRY_RUN_CHANGES)
    if isinstance(plan, EditPlan) and not plan.empty:
        blocked = blocked_by_release(plan.live, time.time(), "this change")
        if blocked is not None:
            raise blocked
    if not plan.empty and not yes:
        confirm_plan(app, plan.service, plan_data(plan))


def confirm_plan(app: App, service: str, data: dict[str, object]) -> None:
    """The yes a shown plan of changes to `service` needs: asked at a terminal, refused where nobody can answer."""
    if not can_ask(app):
        # A script asking for JSON did not ask to skip the question, and a pipe cannot answer it: a change nobody
        # confirmed is not made. The plan goes with the refusal, so a script sees what it would do.
        raise DokiError(
            Code.CONFIRMATION_REQUIRED,
            f"applying this plan to {service} needs a yes, and {_why_not_asked(app)}; nothing was changed",
            "pass --yes to apply it without asking (--dry-run shows the plan)",
            details={"plan": data},
        )
    confirm(app, "Apply these changes?")


def can_ask(app: App) -> bool:
    """Whether someone can answer a question: a terminal, and output meant for people (JSON is for a program,
    which cannot answer; it passes --yes)."""
    import sys

    return not app.output.json_mode and sys.stdin.isatty()


def _why_not_asked(app: App) -> str:
    return "--json asks no question" if app.output.json_mode else "stdin is not a terminal to answer on"


def confirm(app: App, question: str) -> None:
    """Ask `question`, where someone can answer (`can_ask`); a no changes nothing."""
    if not ask(question):
        raise DokiError(Code.ABORTED, "nothing was changed", "run again and answer y, or pass --yes")


def ask(question: str) -> bool:
    """The answer to a yes/no `question`; none (Ctrl-C, or the end of stdin) is `no_answer()`."""
    try:
        return typer.confirm(question)
    except typer.Abort:
        raise no_answer() from None


def no_answer() -> DokiError:
    """A question met Ctrl-C or the end of stdin: every question comes before the first change, and each command
    that asks one takes --yes instead."""
    return DokiError(Code.ABORTED, "no answer to the question; nothing was changed", "answer it, or pass --yes")
