"""The executors of a plan: the only place a plan changes anything, and the display a dry run shows instead.

`apply_edit` writes an `EditPlan` (cors, scale, rollback) in one read-modify-write. The `Executor` runs a deploy's
`Plan` in steps in an order that never leaves traffic on something unproven: secret
access first (a revision that cannot read its secrets never becomes Ready), then the service (Cloud Run moves
traffic only to a Ready revision), then who may invoke it, then the health contract on its URL.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from doki_cli.deploy.planner import REDIRECT_ENV, REDIRECT_PATH, Change, EditPlan, Plan
from doki_cli.deploy.ports import RunPort, SecretsPort
from doki_cli.errors import Code, DokiError
from doki_cli.model import LiveService
from doki_cli.output import Output
from doki_cli.waiting import DEFAULT_TIMEOUT, sleep_in_sight

if TYPE_CHECKING:
    from collections.abc import Callable


# Cloud Run's words for a revision whose account may not read a secret it names (emulator/run/state.py cites them).
NOT_YET_GRANTED = "Permission denied on secret"
# How long a deploy waits for a secret grant it just made to reach Cloud Run before trying the revision once more:
# grants usually arrive well within the 2 minutes Google gives as typical, and making the revision takes time too.
GRANT_SETTLE_SECONDS = 60.0


@dataclass(frozen=True)
class Deployed:
    url: str
    revision: str | None
    checked: bool = False  # the health contract answered on the URL


def unreachable(ingress: str) -> str:
    """Why a service's URL cannot be checked from here: its ingress admits only its project's networks."""
    through = " or through a Cloud Load Balancer" if ingress == "internal-and-cloud-load-balancing" else ""
    return (
        f"ingress is {ingress}, so its URL answers only requests from the project's VPC networks{through} (Cloud Run "
        "answers others 404); check it from there"
    )


def render_plan(out: Output, plan: Plan | EditPlan) -> None:
    """The plan as people read it, on stdout."""
    for text, style in plan_lines(plan) if isinstance(plan, Plan) else edit_plan_lines(plan):
        out.line(text, style=style)


def _heading(plan: Plan | EditPlan) -> tuple[str, None]:
    return (f"Plan for {plan.service} ({plan.path}) on {plan.endpoint}:", None)


def _count(count: int) -> tuple[str, None]:
    return ("No changes." if not count else f"{count} change{'s' if count != 1 else ''}.", None)


def edit_plan_lines(plan: EditPlan) -> list[tuple[str, str | None]]:
    """An edit's lines, as a deploy's plan shows its changes."""
    return [
        _heading(plan),
        *(("  " + _describe(c), _style(c)) for c in plan.changes),
        *_cost_lines(plan),
        _count(len(plan.changes)),
    ]


def _cost_lines(plan: Plan | EditPlan) -> list[tuple[str, str | None]]:
    return [(f"  {line}", "cyan") for line in plan.cost.lines()] if plan.cost is not None else []


def plan_lines(plan: Plan) -> list[tuple[str, str | None]]:
    """The plan's lines and their styles: + added, ~ changed, - removed, = kept, ! warned; values of secrets are
    never shown (only refs)."""
    lines: list[tuple[str, str | None]] = [_heading(plan)]
    if plan.creates:
        lines.append(("  + create the service", "green"))
    lines += [("  " + _describe(change), _style(change)) for change in plan.changes]
    if plan.makes_revision and not any(change.what == "image" for change in plan.changes):
        # The new revision runs it too: a plan that does not say which image leaves a broken one unnoticed.
        lines.append((f"  = image: {plan.desired.image} (unchanged)", "dim"))
    lines += [(f"  + grant {plan.member} access to secret {secret}", "green") for secret in plan.grants]
    if plan.set_redirect:
        lines.append(
            (f"  + env {REDIRECT_ENV}: <service URL>{REDIRECT_PATH} (once Cloud Run assigns the URL)", "green")
        )
    if plan.unmanaged and not plan.prune:
        # Said in a release's plan too, which keeps them: only deploy prunes.
        kept = ", ".join(plan.unmanaged)
        lines.append((f"  = not managed by doki.toml, kept: {kept} (`doki deploy --prune` removes them)", "dim"))
    if plan.kept:
        lines.append((f"  = set outside doki.toml, kept as it is: {', '.join(plan.kept)}", "dim"))
    lines += [(f"  ! {warning}", "yellow") for warning in plan.warnings]
    lines += [
        (f"  ! --skip-checks: the new revision may not start: {problem}", "red") for problem in plan.skipped_checks
    ]
    lines += _cost_lines(plan)
    lines.append(_count(0 if plan.empty else len(plan.changes) + len(plan.grants)))
    return lines


def _describe(change: Change) -> str:
    if change.before is None:
        return f"+ {change.what}: {change.after}"
    if change.after is None:
        return f"- {change.what} (was {change.before})"
    return f"~ {change.what}: {change.before} -> {change.after}"


def _style(change: Change) -> str:
    return "green" if change.before is None else "red" if change.after is None else "yellow"


def plan_data(plan: Plan | EditPlan) -> dict[str, object]:
    """The plan as `--json` reports it."""
    if isinstance(plan, EditPlan):
        changes = [{"what": c.what, "before": c.before, "after": c.after} for c in plan.changes]
        cost = plan.cost.data() if plan.cost is not None else None
        return {"service": plan.path, "endpoint": plan.endpoint, "changes": changes, "cost": cost, "empty": plan.empty}
    return {
        "service": plan.path,
        "endpoint": plan.endpoint,
        "create": plan.creates,
        "changes": [{"what": c.what, "before": c.before, "after": c.after} for c in plan.changes],
        "grants": plan.grants,
        "unmanaged": plan.unmanaged,
        "kept": plan.kept,
        "skipped_checks": plan.skipped_checks,
        "warnings": plan.warnings,
        "cost": plan.cost.data() if plan.cost is not None else None,  # None: the change does not touch the bill
        "empty": plan.empty,
    }


def apply_edit(
    run: RunPort,
    plan: EditPlan,
    *,
    on_progress: Callable[[str], None],
    now: Callable[[], float] = time.time,
    timeout: float = DEFAULT_TIMEOUT,
    wait: bool = True,
) -> LiveService:
    """Write `plan` in one read-modify-write guarded by the etag of that read, and wait (up to `timeout` seconds; not
    beyond Cloud Run's accepting it when not `wait`) until Cloud Run has made the change. A service changed since
    the plan is read again and the edit decided on it: a pin or a release's traffic move keeps what changed
    meanwhile (a tag, another release's lock), while an edit of variables or scaling writes its planned values over
    the same fields, keeping every other."""
    return run.update(
        plan.service, lambda live: plan.decide(live, now()), on_progress=on_progress, timeout=timeout, wait=wait
    )


def grant_access(secrets: SecretsPort, plan: Plan, *, on_progress: Callable[[str], None]) -> None:
    """Let the runtime account read the secrets the plan found it cannot: first, as a revision that cannot read its
    secrets never becomes Ready."""
    assert plan.member is not None, "a plan grants only to the account doki.toml names"
    for secret in plan.grants:
        on_progress(f"granting {plan.member} access to {secret}")
        secrets.grant(secret, plan.member)


def serving_now(run: RunPort, name: str) -> str:
    """What the service serves, read again after an interrupt, for the message that says where things stand; a
    read that fails (or a second Ctrl-C) leaves it to `doki status`."""
    from doki_cli.model import serving_text

    try:
        return serving_text(run.revisions(name))
    except DokiError as err:
        if err.code == Code.SERVICE_NOT_FOUND:
            return "nothing (no service)"
        return "unknown (see `doki status`)"
    except (KeyboardInterrupt, Exception):
        return "unknown (see `doki status`)"


def grant_not_yet_in_effect(err: DokiError, plan: Plan) -> bool:
    """Whether the new revision failed on a secret this very run granted access to: a grant reads back at once but
    reaches Cloud Run later (https://cloud.google.com/iam/docs/access-change-propagation)."""
    if err.code != Code.REVISION_NOT_READY or NOT_YET_GRANTED not in err.message or plan.member is None:
        return False
    return any(f"/secrets/{secret}/" in err.message for secret in plan.grants)


def invoker_progress(plan: Plan) -> str:
    if plan.binding:
        return "allowing unauthenticated calls"
    if plan.public:
        return "anyone may call it: the invoker check is off, so no allUsers binding is needed"
    return "requiring authentication"


class Executor:
    def __init__(
        self,
        run: RunPort,
        secrets: SecretsPort,
        *,
        health: Callable[[str], None],
        on_progress: Callable[[str], None],
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = DEFAULT_TIMEOUT,
        wait: bool = True,
    ) -> None:
        """`timeout`: how long each write is waited for; not `wait`: each write only until Cloud Run accepts it, and
        no health check (nothing may serve yet to check)."""
        self._timeout = timeout
        self._wait = wait
        self._run = run
        self._secrets = secrets
        self._health = health
        self._progress = on_progress
        self._sleep = sleep
        self.pending: list[str] = []

    def execute(self, plan: Plan) -> Deployed:
        service = plan.live
        checked = False

        def grant() -> None:
            grant_access(self._secrets, plan, on_progress=self._progress)

        def update() -> None:
            nonlocal service
            if plan.creates:
                self._progress("creating the service")
            else:
                self._progress("deploying a new revision" if plan.makes_revision else "updating the service")
            try:
                service = self._run.apply(
                    plan.service,
                    plan.desired,
                    keep_env=plan.keep_env,
                    live=plan.live,
                    on_progress=self._progress,
                    new_revision=plan.retries_revision,
                    timeout=self._timeout,
                    wait=self._wait,
                )
            except DokiError as err:
                if not grant_not_yet_in_effect(err, plan):
                    raise
                # A grant reads back at once but reaches Cloud Run later (usually within 2 minutes:
                # https://cloud.google.com/iam/docs/access-change-propagation): one more revision, once it has.
                self._progress(
                    "the new revision could not read its secrets yet: the access granted a moment ago takes time to "
                    f"reach Cloud Run; trying a new revision in {GRANT_SETTLE_SECONDS:.0f} s"
                )
                sleep_in_sight(
                    GRANT_SETTLE_SECONDS,
                    doing="waiting for the access granted to reach Cloud Run",
                    sleep=self._sleep,
                    on_progress=self._progress,
                )
                service = self._run.apply(
                    plan.service,
                    plan.desired,
                    keep_env=plan.keep_env,
                    live=self._run.get(plan.service),
                    on_progress=self._progress,
                    new_revision=True,
                    timeout=self._timeout,
                    wait=self._wait,
                )

        def redirect() -> None:
            nonlocal service
            assert service is not None
            # The URL exists only now: one more revision carries the redirect URI derived from it.
            desired = replace(
                plan.desired, env={**plan.desired.env, REDIRECT_ENV: service.uri.rstrip("/") + REDIRECT_PATH}
            )
            self._progress(f"setting {REDIRECT_ENV} from the service URL")
            # Read again rather than write back the operation's answer: Google may change the etag (and the
            # status) after the operation that created the service ends.
            service = self._run.apply(
                plan.service,
                desired,
                keep_env=plan.keep_env,
                live=self._run.get(plan.service),
                on_progress=self._progress,
                timeout=self._timeout,
            )

        def invoker() -> None:
            self._progress(invoker_progress(plan))
            self._run.set_public(plan.service, plan.binding)

        def health() -> None:
            nonlocal checked
            assert service is not None
            if plan.desired.ingress != "all":
                self._progress(f"health contract not checked: {unreachable(plan.desired.ingress)}")
                return
            self._progress(f"checking {service.uri}/")
            self._health(service.uri)
            checked = True

        updating = "the service's creation" if plan.creates else "the new revision" if plan.makes_revision else None
        # Turning the invoker check back on makes the service private until allUsers is bound: bound first.
        binding_first = plan.binding and plan.writes_invoker_check
        invoking = plan.invoker_changes or plan.creates
        # In order, each with the name an interrupt's message gives it among those not run.
        steps = [
            (name, action)
            for name, action, wanted in (
                ("the secret access grants", grant, plan.member is not None and bool(plan.grants)),
                ("the invoker change", invoker, invoking and binding_first),
                (updating or "the traffic change", update, plan.updates_service),
                (f"setting {REDIRECT_ENV}", redirect, plan.set_redirect),
                ("the invoker change", invoker, invoking and not binding_first),
                ("the health check", health, plan.public and self._wait),
            )
            if wanted
        ]
        self.pending = [name for name, _ in steps]
        for _, action in steps:
            self.pending.pop(0)  # started: no longer among what did not run
            action()
        assert service is not None
        # Unwaited, the revision to name is the one Cloud Run is making, not the one that serves meanwhile.
        return Deployed(service.uri, service.latest_ready if self._wait else service.latest_created, checked)
