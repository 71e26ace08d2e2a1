"""The executors of a plan: one that writes (the only place a deploy changes anything) and one that only shows.

The writing executor runs the plan's steps in an order that never leaves traffic on something unproven: secret
access first (a revision that cannot read its secrets never becomes Ready), then the service (Cloud Run moves
traffic only to a Ready revision), then who may invoke it, then the health contract on its URL.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from doki_cli.deploy.planner import REDIRECT_ENV, REDIRECT_PATH, Change, Plan
from doki_cli.gcp.run import CloudRun
from doki_cli.gcp.secretmanager import SecretManager
from doki_cli.output import Output

if TYPE_CHECKING:
    from collections.abc import Callable


@dataclass(frozen=True)
class Deployed:
    url: str
    revision: str | None


def render_plan(out: Output, plan: Plan) -> None:
    """The plan as people read it, on stdout."""
    for text, style in plan_lines(plan):
        out.line(text, style=style)


def plan_lines(plan: Plan) -> list[tuple[str, str | None]]:
    """The plan's lines and their styles: + added, ~ changed, - removed, = kept, ! warned; values of secrets are
    never shown (only refs)."""
    lines: list[tuple[str, str | None]] = [(f"Plan for {plan.service} ({plan.path}) on {plan.endpoint}:", None)]
    if plan.creates:
        lines.append(("  + create the service", "green"))
    lines += [("  " + _describe(change), _style(change)) for change in plan.changes]
    lines += [(f"  + grant {plan.member} access to secret {secret}", "green") for secret in plan.grants]
    if plan.set_redirect:
        lines.append(
            (f"  + env {REDIRECT_ENV}: <service URL>{REDIRECT_PATH} (once Cloud Run assigns the URL)", "green")
        )
    if plan.unmanaged and not plan.prune:
        lines.append((f"  = not managed by doki.toml, kept: {', '.join(plan.unmanaged)} (--prune removes them)", "dim"))
    if plan.live is not None and plan.live.kept:
        lines.append((f"  = set outside doki.toml, kept as it is: {', '.join(plan.live.kept)}", "dim"))
    lines += [(f"  ! {warning}", "yellow") for warning in plan.warnings]
    lines += [
        (f"  ! --skip-checks: the new revision may not start: {problem}", "red") for problem in plan.skipped_checks
    ]
    count = len(plan.changes) + len(plan.grants)
    lines.append(("No changes." if plan.empty else f"{count} change{'s' if count != 1 else ''}.", None))
    return lines


def _describe(change: Change) -> str:
    if change.before is None:
        return f"+ {change.what}: {change.after}"
    if change.after is None:
        return f"- {change.what} (was {change.before})"
    return f"~ {change.what}: {change.before} -> {change.after}"


def _style(change: Change) -> str:
    return "green" if change.before is None else "red" if change.after is None else "yellow"


def plan_data(plan: Plan) -> dict[str, object]:
    return {
        "service": plan.path,
        "endpoint": plan.endpoint,
        "create": plan.creates,
        "changes": [{"what": c.what, "before": c.before, "after": c.after} for c in plan.changes],
        "grants": plan.grants,
        "unmanaged": plan.unmanaged,
        "kept": list(plan.live.kept) if plan.live is not None else [],
        "skipped_checks": plan.skipped_checks,
        "warnings": plan.warnings,
        "empty": plan.empty,
    }


def serving_now(run: CloudRun, name: str) -> str:
    """What the service serves, read again after an interrupt, for the message that says where things stand; a
    read that fails (or a second Ctrl-C) leaves it to `doki status`."""
    from doki_cli.model import serving_text

    try:
        return serving_text(run.revisions(name)) if run.get(name) is not None else "nothing (no service)"
    except (KeyboardInterrupt, Exception):
        return "unknown (see `doki status`)"


def steps(plan: Plan) -> list[str]:
    """The steps `Executor.execute` runs for `plan`, in order, as an interrupt's message names those not run."""
    names = []
    if plan.member is not None and plan.grants:
        names.append("the secret access grants")
    if plan.updates_service:
        names.append("the service's creation" if plan.creates else "the new revision")
    if plan.set_redirect:
        names.append(f"setting {REDIRECT_ENV}")
    if plan.invoker_changes or plan.creates:
        names.append("the invoker change")
    if plan.public:
        names.append("the health check")
    return names


class Executor:
    def __init__(
        self,
        run: CloudRun,
        secrets: SecretManager,
        *,
        health: Callable[[str], None],
        on_progress: Callable[[str], None],
    ) -> None:
        self._run = run
        self._secrets = secrets
        self._health = health
        self._progress = on_progress
        self.pending: list[str] = []

    def execute(self, plan: Plan) -> Deployed:
        # The steps not started yet: what an interrupt leaves undone.
        self.pending = steps(plan)
        if plan.member is not None and plan.grants:
            self._begin("the secret access grants")
            for secret in plan.grants:
                self._progress(f"granting {plan.member} access to {secret}")
                self._secrets.grant(secret, plan.member)
        service = plan.live
        if plan.updates_service:
            self._begin("the service's creation" if plan.creates else "the new revision")
            self._progress("deploying a new revision" if not plan.creates else "creating the service")
            service = self._run.apply(
                plan.service,
                plan.desired,
                keep_env=plan.keep_env,
                live=plan.live,
                on_progress=self._progress,
                new_revision=plan.retries_revision,
            )
        if plan.set_redirect and service is not None:
            # The URL exists only now: one more revision carries the redirect URI derived from it.
            desired = replace(
                plan.desired, env={**plan.desired.env, REDIRECT_ENV: service.uri.rstrip("/") + REDIRECT_PATH}
            )
            self._begin(f"setting {REDIRECT_ENV}")
            self._progress(f"setting {REDIRECT_ENV} from the service URL")
            # Read again rather than write back the operation's answer: Google may change the etag (and the
            # status) after the operation that created the service ends.
            service = self._run.apply(
                plan.service,
                desired,
                keep_env=plan.keep_env,
                live=self._run.get(plan.service),
                on_progress=self._progress,
            )
        if plan.invoker_changes or plan.creates:
            self._begin("the invoker change")
            self._progress("allowing unauthenticated calls" if plan.public else "requiring authentication")
            self._run.set_public(plan.service, plan.public)
        assert service is not None
        url = service.uri
        if plan.public:
            self._begin("the health check")
            self._progress(f"checking {url}/")
            self._health(url)
        return Deployed(url, service.latest_ready)

    def _begin(self, step: str) -> None:
        self.pending.remove(step)
