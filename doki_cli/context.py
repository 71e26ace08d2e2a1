"""The command context: what every command works with, made once per `doki` call and kept on `ctx.obj`.

The top-level callback parses the global options into an `App`; those given after a command name are merged into it
as they are parsed (`App.give`, by the rule in `doki_cli.globaloptions`). Commands ask it for the output, doki.toml
(loaded on first use, so commands that need none never read it) and the Google adapters (built on first use, through
the one `Factory`). Tests hand typer's runner a `Factory` of their own as `obj` to change how collaborators are made.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from typer._click.core import Context

from doki_cli.errors import Code, DokiError
from doki_cli.output import Output

if TYPE_CHECKING:
    from doki_cli.config import ServiceConfig
    from doki_cli.dnscheck import Resolved
    from doki_cli.gcp.google import Google
    from doki_cli.gcp.retry import Retrier

# How many of a failed revision's last log lines deploy and release show: usually enough to hold its traceback.
LAST_LINES = 20


def _retrier() -> Retrier:
    from doki_cli.gcp.retry import Retrier

    return Retrier()


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _resolve(name: str) -> Resolved:
    from doki_cli.dnscheck import resolve

    return resolve(name)


@dataclass(frozen=True)
class Factory:
    """How the collaborators of a command are made: the one place tests replace (a retrier with a fake clock, say)."""

    new_retrier: Callable[[], Retrier] = _retrier
    # The time progress lines are stamped with: a test's fixed one makes a CI log's lines comparable as text.
    now: Callable[[], datetime] = _utc_now
    # What the waits (--timeout, the heartbeat, a release's pause between traffic steps) sleep and count on: a test's
    # fake clock runs a 15-minute wait out in no time, and deterministically.
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    # What a domain resolves to (`doki domains` checks its DNS records): a test's fake resolver stands for the world's.
    resolve: Callable[[str], Resolved] = _resolve

    def google(self, project: str, region: str) -> Google:
        from doki_cli.gcp.clients import ClientFactory
        from doki_cli.gcp.google import Google

        return Google(
            ClientFactory.from_env(quota_project=project),
            project,
            region,
            retrier=self.new_retrier(),
            sleep=self.sleep,
            clock=self.monotonic,
        )


@dataclass(frozen=True)
class GlobalOptions:
    config: Path | None = None
    env: str | None = None
    project: str | None = None
    region: str | None = None
    json: bool = False
    verbose: int = 0


@dataclass
class App:
    """One `doki` call: its global options, its output, and what commands build from them, each made once."""

    options: GlobalOptions = field(default_factory=GlobalOptions)
    factory: Factory = field(default_factory=Factory)
    # The global options given on the command line so far, each with the command it followed (`doki`, `doki cors`):
    # one given again, further on, must say the same.
    given: dict[str, str] = field(default_factory=dict)
    # `--service NAME` of the read and operate commands: the service to act on, with or without a doki.toml.
    service: str | None = None

    def give(self, name: str, value: Any, *, where: str) -> None:
        """Global option `name` given on the command line after `where` (the command path it follows), merged into
        the options: a value given on the command line replaces the environment's; --json given anywhere turns JSON
        on, and -v counts wherever it is given; any other given twice with two values is refused."""
        before = getattr(self.options, name)
        if name == "verbose" and name in self.given:
            value += before
        elif name not in ("json", "verbose") and name in self.given and value != before:
            flag = f"--{name}"
            raise DokiError(
                Code.BAD_OPTION,
                f"{flag} is given twice with two values: {before} after `{self.given[name]}`, {value} after `{where}`",
                f"give {flag} once, before or after the command name",
            )
        self.options = replace(self.options, **{name: value})
        self.given.setdefault(name, where)
        # Made from the options: none is made before the command runs, but one made sooner must not outlive them.
        for made in ("output", "config", "google"):
            self.__dict__.pop(made, None)

    @cached_property
    def output(self) -> Output:
        return Output(json_mode=self.options.json, verbosity=self.options.verbose, clock=self.factory.now)

    def use_service(self, name: str | None) -> None:
        """Act on the service `name` (`--service`) rather than the one doki.toml names; None leaves doki.toml's."""
        if name is not None:
            from doki_cli.config import check_service_name

            check_service_name(name)
            self.service = name
            for made in ("config", "google"):
                self.__dict__.pop(made, None)

    def check_save(self, save: bool) -> None:
        """--save writes doki.toml's service; with --service, the service acted on is another matter."""
        if save and self.service is not None:
            raise DokiError(
                Code.BAD_OPTION,
                "--save writes doki.toml, and --service acts on a service apart from it; nothing was changed",
                "drop --service to act on doki.toml's service and save, or drop --save",
            )

    @cached_property
    def config(self) -> ServiceConfig:
        """doki.toml, its environment chosen and overridden by the global options; DokiError when it is wrong.
        With `--service`, that service, in the project and region the options, doki.toml (when there is one) or
        gcloud's configuration name."""
        from doki_cli.config import find_config, load_config, service_only

        options = self.options
        if self.service is None:
            return load_config(options.config, env=options.env, project=options.project, region=options.region)
        # A doki.toml in reach still names the project and region (--env and --config need one).
        if options.config is not None or options.env is not None or find_config() is not None:
            config = load_config(options.config, env=options.env, project=options.project, region=options.region)
            return replace(config, name=self.service)
        return service_only(self.service, project=options.project, region=options.region)

    @cached_property
    def google(self) -> Google:
        """The Google adapters for doki.toml's project and region."""
        return self.factory.google(self.config.project, self.config.region)

    def google_for(self, project: str, region: str) -> Google:
        """Adapters for a project doki.toml does not name yet (`doki init` asks before it writes one)."""
        return self.factory.google(project, region)

    def last_lines(self, revision: str) -> list[str]:
        """A revision's last log lines, as deploy and release show them; none when they cannot be read, as they are
        a courtesy beside the error that follows regardless."""
        from doki_cli.gcp.logs import LogQuery

        try:
            lines = self.google.logs.recent(
                LogQuery(self.config.name, self.config.region, revision=revision), LAST_LINES
            )
        except DokiError:
            return []
        return [f"{line.time}  {line.severity:<8} {line.message}" for line in lines]

    def show_last_lines(self, revision: str | None, lines: list[str]) -> None:
        if revision and lines:
            self.output.note(f"Last log lines of {revision}:")
            for line in lines:
                self.output.note(f"  {line}")


def app_of(ctx: Context) -> App:
    """The `App` of the `doki` call that `ctx` belongs to (a fresh one for a command invoked on its own)."""
    root = ctx.find_root()
    if not isinstance(root.obj, App):
        root.obj = App(factory=root.obj if isinstance(root.obj, Factory) else Factory())
    return root.obj
