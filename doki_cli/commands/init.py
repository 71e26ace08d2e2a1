"""`doki init`: scaffold a project for doki: doki.toml, .dockerignore, .env.example and CI templates that release.

Nothing is overwritten without --force, and nothing is written at all when something is wrong: every file that
exists is listed first, the generated doki.toml is validated as `doki` will load it, and the APIs are enabled (with
--enable-apis) before any file is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from doki_cli.context import App, app_of
from doki_cli.errors import Code, DokiError

if TYPE_CHECKING:
    from doki_cli.output import Output
    from doki_cli.scaffold import Adopted, Answers

# The environment variable Google's client libraries name the project by, read when neither --project nor DOKI_PROJECT
# is; then gcloud's own (CLOUDSDK_CORE_PROJECT, then its active configuration: doki_cli.gcloudconfig).
PROJECT_VARIABLES = ("GOOGLE_CLOUD_PROJECT",)


def init(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="The project to scaffold.")] = Path("."),
    service: Annotated[
        str | None, typer.Option("--service", help="Cloud Run service name [default: from the directory's name].")
    ] = None,
    supabase_url: Annotated[
        str | None, typer.Option("--supabase-url", help="Your Supabase project URL, https://<ref>.supabase.co.")
    ] = None,
    origins: Annotated[
        list[str] | None,
        typer.Option("--origin", metavar="<str>", help="A frontend origin CORS allows; repeat for more."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the files that exist.")] = False,
    enable_apis: Annotated[
        bool,
        typer.Option("--enable-apis", help="Enable Cloud Run, Secret Manager, Cloud Build, Artifact Registry, IAM."),
    ] = False,
    create_account: Annotated[
        bool,
        typer.Option(
            "--create-account", help="Create the runtime account doki.toml names (a dedicated one, no roles yet)."
        ),
    ] = False,
    from_service: Annotated[
        str | None,
        typer.Option(
            "--from-service",
            metavar="NAME",
            help="Write doki.toml from the live Cloud Run service NAME: adopt a service gcloud (or the guide) made.",
        ),
    ] = None,
) -> None:
    """Write doki.toml, .dockerignore, .env.example, cloudbuild.yaml and a GitHub Actions workflow.

    The project and region are the global --project and --region. Without them the project comes from
    GOOGLE_CLOUD_PROJECT or gcloud's configured project, and the region from gcloud's run/region, else us-central1.
    """
    from doki_cli.scaffold import PLACEHOLDER_ORIGIN, PLACEHOLDER_SUPABASE_URL, Answers, render

    app = app_of(ctx)
    options = app.options
    out = app.output
    root = directory.resolve()
    if not root.is_dir():
        raise DokiError(Code.NOT_A_DIRECTORY, f"{directory} is not a directory", "create it first, or name another")
    if from_service is not None:
        _check_adoption_options(from_service, service, supabase_url, origins or [], create_account)
    url, allowed = _frontend(supabase_url, origins or [])
    answers = Answers(
        service=from_service or service or _service_from(root),
        project=_project(options.project, out),
        region=_region(options.region, out),
        supabase_url=url or PLACEHOLDER_SUPABASE_URL,
        origins=tuple(allowed) or (PLACEHOLDER_ORIGIN,),
    )
    files = render(answers)
    if from_service is None:
        _check_loads(files["doki.toml"])
    existing = [path for path in files if (root / path).exists()]
    if existing and not force:
        raise DokiError(
            Code.FILES_EXIST,
            f"doki init would overwrite {', '.join(existing)} in {root}",
            "nothing was written: move them away, or run doki init --force to overwrite them",
        )
    adopted = None
    if from_service is not None:
        from doki_cli.scaffold import adopted_toml

        adopted = _adopt(app, answers)
        files["doki.toml"] = adopted_toml(adopted)
        _check_loads(
            files["doki.toml"],
            hint="the live service has a setting doki.toml cannot hold: change it on the service, or write doki.toml "
            "with doki init (without --from-service) and edit it",
        )
    apis = _enable_apis(app, answers) if enable_apis else None
    just_enabled = apis is not None and "iam.googleapis.com" in apis["enabled"]
    account = _create_account(app, answers, just_enabled=just_enabled) if create_account else None
    for path, text in files.items():
        _write(root / path, text)

    shown = {path: str(directory / path) for path in files}
    if adopted is not None:
        steps = _adoption_steps(adopted)
    else:
        unset = [name for name, value in (("SUPABASE_URL", url), ("ALLOWED_ORIGINS", allowed)) if not value]
        steps = _next_steps(answers, unset, account_made=account is not None)
    out.data(
        {
            "directory": str(root),
            "service": answers.service,
            "project": answers.project,
            "region": answers.region,
            "files": [
                {"path": shown[path], "action": "overwritten" if path in existing else "created"} for path in files
            ],
            "apis": apis,
            "account": account,
            "adopted": _adopted_data(adopted) if adopted is not None else None,
            "next": steps,
        }
    )
    if adopted is not None:
        out.line(f"{'read':<9}  {adopted.live.name} ({answers.project}, {answers.region}): {adopted.live.spec.image}")
    for path in files:
        out.line(f"{'overwrote' if path in existing else 'created':<9}  {shown[path]}")
    if apis is not None:
        enabled = ", ".join(apis["enabled"]) or "nothing"
        already = f" ({', '.join(apis['already_enabled'])} already were)" if apis["already_enabled"] else ""
        out.line(f"{'enabled':<9}  {enabled}{already}")
    if account is not None:
        out.line(f"{account['outcome']:<9}  {account['email']}")
    out.line("Next:")
    for step in steps:
        out.line(f"  {step}")


def _check_adoption_options(
    name: str, service: str | None, supabase_url: str | None, origins: list[str], create_account: bool
) -> None:
    """--from-service takes the service's own settings: options that would say otherwise are refused."""
    if service is not None and service != name:
        raise DokiError(
            Code.BAD_OPTION,
            f"--service {service} and --from-service {name} name two services",
            "pass only --from-service: doki.toml takes the service's name",
        )
    clashing = [flag for flag, given in (("--supabase-url", supabase_url), ("--origin", origins)) if given]
    if clashing:
        raise DokiError(
            Code.BAD_OPTION,
            f"{' and '.join(clashing)} cannot be combined with --from-service: doki.toml takes the live service's env",
            "run doki init --from-service alone, then edit [service.env] in doki.toml",
        )
    if create_account:
        raise DokiError(
            Code.BAD_OPTION,
            "--create-account cannot be combined with --from-service: the service keeps the account it runs as",
            "for a dedicated account, set service_account in doki.toml, then run doki doctor --create-account",
        )


def _adopt(app: App, answers: Answers) -> Adopted:
    """The live service doki.toml is written from; service_not_found when there is none."""
    from doki_cli.scaffold import Adopted

    run = app.google_for(answers.project, answers.region).run
    live = run.get(answers.service)
    if live is None:
        raise DokiError(
            Code.SERVICE_NOT_FOUND,
            f"there is no Cloud Run service {answers.service} in project {answers.project}, region {answers.region}",
            f"list them with `gcloud run services list --project {answers.project}`, or pass --region",
        )
    return Adopted(live, answers.project, answers.region, public=run.is_public(answers.service))


def _adopted_data(adopted: Adopted) -> dict[str, object]:
    return {
        "service": adopted.live.name,
        "image": adopted.live.spec.image,
        "public": adopted.public,
        "kept": [str(kept) for kept in adopted.live.kept],
    }


def _adoption_steps(adopted: Adopted) -> list[str]:
    from doki_cli.config import is_compute_default

    steps = ["review doki.toml: it is the live service's settings"]
    account = adopted.live.spec.service_account
    if not account or is_compute_default(account):
        steps.append(
            "give the service a dedicated runtime account: set service_account in doki.toml, then "
            "`doki doctor --create-account` (it runs as the Compute Engine default account, Editor on the project)"
        )
    steps += [
        "doki deploy --dry-run: what a first deploy would change (doki's image, pinned secret versions, "
        "GOOGLE_REDIRECT_URI) and what it keeps",
        "doki doctor: the required APIs and the deployment guide's security checklist",
    ]
    return steps


def _project(given: str | None, out: Output) -> str:
    import os

    from doki_cli import gcloudconfig

    if given:
        return given
    variable = next((v for v in PROJECT_VARIABLES if os.environ.get(v)), None)
    setting = gcloudconfig.Setting(os.environ[variable], variable) if variable else gcloudconfig.project()
    if setting is None:
        raise DokiError(
            Code.PROJECT_REQUIRED,
            "doki init needs the Google Cloud project the service will run in",
            "pass --project YOUR_PROJECT_ID (`gcloud projects list` shows yours), or set one with `gcloud config set "
            "project`",
        )
    # Said, as it was not typed: a project picked up from the environment is the one mistake worth catching early.
    out.note(f"project {setting.value} (from {setting.source})")
    return setting.value


def _region(given: str | None, out: Output) -> str:
    from doki_cli import gcloudconfig
    from doki_cli.config import DEFAULT_REGION

    if given:
        return given
    setting = gcloudconfig.region()
    if setting is None:
        return DEFAULT_REGION
    out.note(f"region {setting.value} (from {setting.source})")
    return setting.value


def _service_from(root: Path) -> str:
    from doki_cli.scaffold import service_name_for

    name = service_name_for(root.name)
    if name is None:
        raise DokiError(
            Code.SERVICE_REQUIRED,
            f"no Cloud Run service name can be made from the directory name {root.name!r}",
            "pass --service NAME (lowercase letters, digits and -, starting with a letter)",
        )
    return name


def _frontend(supabase_url: str | None, origins: list[str]) -> tuple[str | None, list[str]]:
    """The Supabase URL and CORS origins, checked as the backend checks them."""
    from urllib.parse import urlsplit

    from doki.origins import origin_problem

    url = None
    if supabase_url is not None:
        url = supabase_url.rstrip("/")
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname or parts.path or parts.query or origin_problem(url):
            raise DokiError(
                Code.BAD_OPTION,
                f"--supabase-url {supabase_url!r} is not a project URL",
                "pass it as Supabase shows it (Settings > API): https://<ref>.supabase.co",
            )
    problems = ["'*' allows any site: list your frontends" if o == "*" else origin_problem(o) for o in origins]
    found = [p for p in problems if p]
    if found:
        raise DokiError(Code.BAD_OPTION, f"--origin: {'; '.join(found)}", "pass each origin as scheme://host[:port]")
    return url, origins


def _check_loads(text: str, *, hint: str = "fix --service, --project or --region (see `doki init --help`)") -> None:
    """Refuse options that would make a doki.toml `doki` cannot load, naming every problem (nothing is written)."""
    import tempfile

    from doki_cli.config import load_config

    with tempfile.TemporaryDirectory(prefix="doki-init-") as tmp:
        path = Path(tmp) / "doki.toml"
        path.write_text(text)
        try:
            load_config(path)
        except DokiError as err:
            raise DokiError(
                Code.BAD_OPTION,
                err.message.replace(str(path), "the doki.toml doki init would write"),
                hint,
            ) from None


def _enable_apis(app: App, answers: Answers) -> dict[str, list[str]]:
    from doki_cli.gcp.serviceusage import REQUIRED_APIS

    usage = app.google_for(answers.project, answers.region).service_usage
    disabled = usage.disabled(REQUIRED_APIS)
    if disabled:
        usage.enable(disabled)
    return {"enabled": disabled, "already_enabled": [api for api in REQUIRED_APIS if api not in disabled]}


# An API enabled a moment ago may still answer SERVICE_DISABLED for a while ("wait a few minutes for the action to
# propagate", Google's own message): creating the account right after enabling IAM waits that long at most.
ENABLED_API_SETTLE = (5.0, 10.0, 20.0, 30.0)


def _create_account(app: App, answers: Answers, *, just_enabled: bool) -> dict[str, str]:
    """The runtime account doki.toml names, created when missing: a dedicated identity with no roles of its own
    (the deployment guide's advice); deploys grant it the secrets it reads."""
    import time

    accounts = app.google_for(answers.project, answers.region).accounts
    waits = list(ENABLED_API_SETTLE) if just_enabled else []
    while True:
        try:
            made, created = accounts.create(
                answers.account_email, "doki runtime", f"Runs the Cloud Run service {answers.service}"
            )
        except DokiError as err:
            if err.code != Code.API_DISABLED:
                raise
            if not waits:
                err.hint = (
                    "iam.googleapis.com was enabled moments ago and is still taking effect: run doki init "
                    "--create-account --force again in a few minutes"
                    if just_enabled
                    else f"{err.hint} --project {answers.project}, or run doki init again with --enable-apis"
                )
                raise
            time.sleep(waits.pop(0))
            continue
        return {"email": made.email, "outcome": "created" if created else "exists"}


def _write(path: Path, text: str) -> None:
    # Written whole, then renamed into place: an interrupted init leaves no half file.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.doki-init.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _next_steps(answers: Answers, unset: list[str], *, account_made: bool) -> list[str]:
    steps = []
    if unset:
        steps.append(f"set {' and '.join(unset)} in doki.toml [service.env] (doki init wrote placeholders)")
    if not account_made:
        steps.append(
            "create the runtime account: `doki doctor --create-account`, or "
            f"gcloud iam service-accounts create {answers.account_id} --project {answers.project}"
        )
    steps += [
        "cp .env.example .env, then set the secrets in it (`doki keys generate` makes ENCRYPTION_KEY and "
        "SESSION_SECRET_KEY)",
        "doki secrets push && doki build --push && doki deploy",
        "doki doctor: the required APIs and the deployment guide's security checklist",
    ]
    return steps
