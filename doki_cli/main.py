"""The `doki` entry point: global options, command registration, and the one place errors are rendered.

The global options are declared here, on the root; every command takes them after its name too
(`doki_cli.globaloptions`)."""

from __future__ import annotations

from typing import Any

import typer
from typer._click.core import Context, ParameterSource
from typer._click.exceptions import ClickException, UsageError

from doki_cli.commands import (
    build,
    cors,
    deploy,
    dev,
    doctor,
    domains,
    emulator,
    history,
    init,
    keys,
    logs,
    monitor,
    preview,
    release,
    rollback,
    scale,
    secrets,
    status,
)
from doki_cli.context import App, Factory, GlobalOptions, app_of
from doki_cli.errors import Code, DokiError
from doki_cli.globaloptions import NAMES, DokiGroupBase, DokiTyper
from doki_cli.options import ConfigOption, EnvOption, JsonOption, ProjectOption, RegionOption, VerboseOption
from doki_cli.output import Output

# Where the root keeps the arguments it was given: read for --json when a command cannot parse its own.
ARGS = "doki.args"


class DokiGroup(DokiGroupBase):
    """Renders every DokiError (and any unexpected failure) once, in the mode the user asked for."""

    # `doki --help` lists the commands by what they are for, in the order of a project's life (docs/cli.md says the
    # same): a command missing here is listed under "Commands", after these.
    sections = (
        ("Develop", ("dev", "build", "keys")),
        ("Deploy", ("init", "secrets", "deploy", "release", "preview")),
        ("Operate", ("status", "history", "logs", "monitor", "scale", "cors", "domains", "rollback", "doctor")),
        ("Emulator", ("emulator",)),
    )

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        ctx.meta[ARGS] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except typer.Exit:
            raise
        except ClickException as exc:
            # A usage error (an unknown command or option, a bad value) that typer prints well as text; --json asks
            # for it as JSON like every other error. Given after the command name, --json may follow the very
            # option the command could not parse, so the arguments themselves are read (up to a `--`).
            args = ctx.meta.get(ARGS, [])
            given = args[: args.index("--")] if "--" in args else args
            if not (ctx.params.get("json") or "--json" in given):
                raise
            where = exc.ctx.command_path if isinstance(exc, UsageError) and exc.ctx else ctx.command_path
            error = DokiError(Code.USAGE_ERROR, exc.format_message(), f"see `{where} --help`")
            Output(json_mode=True).error(error)
            raise typer.Exit(exc.exit_code) from None
        except typer.Abort:
            # A prompt met Ctrl-C or the end of stdin. Those of the commands say what skips them (--yes, where the
            # command has it: commands/_plan.py); one that did not is still no answer, and before any change.
            app_of(ctx).output.error(
                DokiError(
                    Code.ABORTED,
                    "no answer to the question; nothing was changed",
                    "run the command again and answer the question",
                )
            )
            raise typer.Exit(1) from None
        except DokiError as err:
            app_of(ctx).output.error(err)
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt:
            _interrupted(ctx)
        except Exception as exc:
            from doki_cli.interrupts import is_interrupt

            if is_interrupt(exc):
                _interrupted(ctx)  # Ctrl-C, surfacing from inside gRPC as another error
            from doki_cli.gcp.errors import expired_login, is_expired_login

            if is_expired_login(exc):
                # google-auth's RefreshError, raised by a client that refreshes its token before a call (storage).
                app_of(ctx).output.error(expired_login(exc, "calling Google"))
                raise typer.Exit(1) from None
            app = app_of(ctx)
            if app.options.verbose:
                import traceback

                app.output.err.print(traceback.format_exc(), markup=False)
            app.output.error(
                DokiError(
                    Code.INTERNAL_ERROR,
                    f"{type(exc).__name__}: {exc}",
                    "this is a bug in doki: rerun with -v for the traceback and report it",
                )
            )
            raise typer.Exit(1) from None


def _interrupted(ctx: Context) -> None:
    """Ctrl-C where no command said more: said so, never a silent exit (commands that write say what they left)."""
    app_of(ctx).output.error(
        DokiError(
            Code.INTERRUPTED,
            "interrupted before the command finished",
            "run it again to finish; if it was changing the service, what it had sent stays, and `doki status` shows "
            "what the service serves now",
        )
    )
    raise typer.Exit(Code.INTERRUPTED.exit_code) from None


app = DokiTyper(
    cls=DokiGroup,
    name="doki",
    help="Run the Doki backend locally and deploy it to Google Cloud Run.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from doki import __version__  # one version for the package, the backend and the CLI

        typer.echo(f"doki {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    config: ConfigOption = None,
    env: EnvOption = None,
    project: ProjectOption = None,
    region: RegionOption = None,
    json: JsonOption = False,
    verbose: VerboseOption = 0,
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    # A test may hand in the factory its collaborators come from (as typer's `obj`); a user's call gets the real one.
    factory = ctx.obj if isinstance(ctx.obj, Factory) else Factory()
    options = GlobalOptions(config=config, env=env, project=project, region=region, json=json, verbose=verbose)
    given = {name: ctx.command_path for name in NAMES if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE}
    ctx.obj = App(options, factory, given)


app.command("build")(build.build)
app.command("dev")(dev.dev)
app.command("deploy")(deploy.deploy)
app.command("release")(release.release)
app.command("status")(status.status)
app.command("doctor")(doctor.doctor)
app.command("init")(init.init)
app.command("rollback")(rollback.rollback)
app.command("scale")(scale.scale)
app.command("logs")(logs.logs)
app.command("history")(history.history)
app.add_typer(keys.app, name="keys")
app.add_typer(emulator.app, name="emulator")
app.add_typer(secrets.app, name="secrets")
app.add_typer(cors.app, name="cors")
app.add_typer(monitor.app, name="monitor")
app.add_typer(domains.app, name="domains")
app.add_typer(preview.app, name="preview")


def run() -> None:
    app()
