"""`doki domains`: custom domains of the service, as Cloud Run domain mappings: added (planned, confirmed, the DNS
records to create printed and checked, the certificate followed), listed, removed."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

import typer

from doki_cli.context import app_of
from doki_cli.errors import Code, DokiError
from doki_cli.globaloptions import DokiTyper
from doki_cli.options import DryRunOption, ServiceOption, YesOption

if TYPE_CHECKING:
    from doki_cli.context import App
    from doki_cli.model import DomainMapping

app = DokiTyper(
    help="Custom domains of the service (Cloud Run domain mappings): add, list, remove.", no_args_is_help=True
)
DomainArgument = Annotated[str, typer.Argument(metavar="DOMAIN", help="The domain, e.g. api.example.com.")]
# A host name of labels of letters, digits and hyphens, at most 64 characters (Cloud Run's limit for a mapping), no
# wildcard (the docs: "You cannot use wildcard certificates with this feature").
_DOMAIN = re.compile(r"(?=.{4,64}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
WAITING = (
    "Google issues the certificate once these records resolve: usually within 15 minutes, up to 24 hours. "
    "`doki domains list` shows where it is."
)


def _domain(text: str) -> str:
    domain = text.strip().lower().rstrip(".")
    if not _DOMAIN.fullmatch(domain):
        raise DokiError(
            Code.BAD_DOMAIN,
            f"{text!r} is not a domain a Cloud Run domain mapping can take",
            "give a host name such as api.example.com: letters, digits and hyphens, at most 64 characters, "
            "no wildcard and no scheme or path",
        )
    return domain


def _record_lines(doki: App, mapping: DomainMapping) -> list[dict[str, Any]]:
    """The records to create, each with whether this machine's resolver sees it yet; printed as a table."""
    from doki_cli.dnscheck import check

    out = doki.output
    seen = check(mapping.domain, mapping.records, doki.factory.resolve(mapping.domain))
    rows = [
        (item.record.name or "@", item.record.type, item.record.data, "found" if item.found else "not found yet")
        for item in seen
    ]
    width = max([len("NAME"), *(len(row[0]) for row in rows)])
    out.line(f"  {'NAME':<{width}}  TYPE   CONTENTS                DNS NOW")
    for name, kind, data, found in rows:
        out.line(f"  {name:<{width}}  {kind:<5}  {data:<22}  {found}", style="green" if found == "found" else None)
    missing = [item for item in seen if not item.found]
    if missing:
        out.line(f"  ({mapping.domain} resolves to {missing[0].resolves_to} here)", style="dim")
    return [
        {"name": item.record.name, "type": item.record.type, "data": item.record.data, "found": item.found}
        for item in seen
    ]


def _why(mapping: DomainMapping) -> str:
    return ": ".join(part for part in (mapping.reason, mapping.message) if part) or "no reason given"


def _said(doki: App, mapping: DomainMapping) -> dict[str, Any]:
    """The mapping's state, said; failed is an error."""
    out = doki.output
    if mapping.state == "failed":
        raise DokiError(
            Code.DOMAIN_MAPPING_FAILED,
            f"the domain mapping of {mapping.domain} failed: {_why(mapping)}",
            f"fix what Cloud Run says, then run `doki domains add {mapping.domain}` again: it makes the mapping anew",
        )
    data: dict[str, Any] = {
        "domain": mapping.domain,
        "service": mapping.service,
        "region": mapping.region,
        "state": mapping.state,
        "url": f"https://{mapping.domain}/",
    }
    if mapping.state == "ready":
        out.line(f"{mapping.domain} serves {mapping.service}: https://{mapping.domain}/", style="green")
        data["records"] = [{"name": r.name, "type": r.type, "data": r.data} for r in mapping.records]
        return data
    out.line(f'Create these DNS records at the domain\'s DNS provider ("@" is {mapping.domain} itself):')
    data["records"] = _record_lines(doki, mapping)
    out.line(WAITING)
    return data


@app.command("add")
def add(
    ctx: typer.Context,
    domain: DomainArgument,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    service: ServiceOption = None,
) -> None:
    """Map DOMAIN to the service: checked (the domain verified as yours, the service deployed, the region offering
    domain mappings), planned, then made; the DNS records to create are printed, each checked against DNS, and the
    certificate's state said."""
    from doki_cli.commands._plan import DRY_RUN_CHANGES, DRY_RUN_NO_CHANGES, confirm_plan
    from doki_cli.deploy.planner import read_live

    doki = app_of(ctx)
    doki.use_service(service)
    out, config, google = doki.output, doki.config, doki.google
    name = _domain(domain)
    read_live(google.run, config.name)
    existing = google.domains.get(name)
    if existing is not None and existing.service != config.name:
        raise DokiError(
            Code.DOMAIN_IN_USE,
            f"{name} is mapped to {existing.service} in {existing.region} already; nothing was changed",
            f"remove it first: doki domains remove {name} --service {existing.service}",
        )
    plan_line = f"  + domain mapping {name} -> {config.name} ({config.region})"
    data: dict[str, Any] = {"plan": {"domain": name, "service": config.name, "region": config.region}}
    remake = existing is not None and existing.state == "failed"
    if remake:
        assert existing is not None
        # A failed mapping is made anew (Cloud Run looks at a new one afresh: a domain verified since, a service
        # deployed since).
        plan_line = (
            f"  ~ domain mapping {name} -> {config.name} ({config.region}): failed ({_why(existing)}), made anew"
        )
    elif existing is not None:
        out.line(f"Plan for the custom domain {name}:")
        out.line(f"  = domain mapping {name} -> {config.name} ({config.region})", style="dim")
        out.line("No changes.")
        data["plan"]["changes"] = []
        if dry_run:
            out.data(data)
            raise typer.Exit(DRY_RUN_NO_CHANGES)
        out.data({**data, **_said(doki, existing)})
        return
    verified = google.domains.verified_domains()
    if not any(name == d or name.endswith("." + d) for d in verified):
        raise DokiError(
            Code.DOMAIN_NOT_VERIFIED,
            f"{name} is not a domain you have verified (verified: {', '.join(verified) or 'none'}); Cloud Run maps "
            "only a domain its owner verified, or a subdomain of one; nothing was changed",
            f"verify {name} or a parent domain of it (the largest you will map under) in Google Search Console as "
            f"the account doki runs as (gcloud domains verify DOMAIN), then run this again",
        )
    # Cloud Run checks the mapping without making it (dryRun=all): a region without domain mappings says so now. A
    # failed mapping of the name there shows the region has them (and would be the dry run's conflict).
    if not remake:
        google.domains.create(name, config.name, dry_run=True)
    out.line(f"Plan for the custom domain {name}:")
    out.line(plan_line, style="green")
    out.line("1 change.")
    data["plan"]["changes"] = [{"action": "replace" if remake else "create", "what": f"domain mapping {name}"}]
    if dry_run:
        out.data(data)
        raise typer.Exit(DRY_RUN_CHANGES)
    if not yes:
        confirm_plan(doki, config.name, data["plan"])
    if remake:
        out.progress(f"deleting the failed mapping of {name}")
        google.domains.delete(name)
    out.progress(f"mapping {name} to {config.name}")
    google.domains.create(name, config.name)
    out.progress("waiting for Cloud Run to name the DNS records")
    mapping = google.domains.wait_for_records(name, sleep=doki.factory.sleep, clock=doki.factory.monotonic)
    if mapping is None:
        raise DokiError(
            Code.UNKNOWN_DOMAIN,
            f"the mapping of {name} was made and is gone already (deleted meanwhile?)",
            "`doki domains list` shows what is mapped; run this again to map it",
        )
    out.data({**data, **_said(doki, mapping)})


@app.command("list")
def list_(ctx: typer.Context, service: ServiceOption = None) -> None:
    """The domain mappings in the service's region: each domain, its service, and its state (ready, waiting for its
    certificate, failed and why); the DNS records of those not ready yet, each checked."""
    doki = app_of(ctx)
    doki.use_service(service)
    out, config = doki.output, doki.config
    mappings = doki.google.domains.list()
    listed = []
    if not mappings:
        out.line(f"No domain mappings in {config.region}: `doki domains add DOMAIN` makes one.")
    for mapping in mappings:
        marker = {"ready": "✔", "failed": "X"}.get(mapping.state, "…")
        out.line(f"{marker} {mapping.domain}  {mapping.service}  {mapping.state}")
        entry: dict[str, Any] = {
            "domain": mapping.domain,
            "service": mapping.service,
            "region": mapping.region,
            "state": mapping.state,
            "message": mapping.message,
        }
        if mapping.state == "failed":
            out.line(f"    {_why(mapping)}", style="red")
        elif mapping.state != "ready" and mapping.records:
            entry["records"] = _record_lines(doki, mapping)
        listed.append(entry)
    out.data({"region": config.region, "domains": listed})


@app.command("remove")
def remove(
    ctx: typer.Context,
    domain: DomainArgument,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    service: ServiceOption = None,
) -> None:
    """Remove DOMAIN's mapping (planned and confirmed); the DNS records can go once it is gone."""
    from doki_cli.commands._plan import DRY_RUN_CHANGES, confirm_plan

    doki = app_of(ctx)
    doki.use_service(service)
    out, config, google = doki.output, doki.config, doki.google
    name = _domain(domain)
    existing = google.domains.get(name)
    if existing is None:
        raise DokiError(
            Code.UNKNOWN_DOMAIN,
            f"{name} has no domain mapping in {config.region}",
            "`doki domains list` shows the mapped domains (--region for another region)",
        )
    if existing.service != config.name:
        raise DokiError(
            Code.DOMAIN_IN_USE,
            f"{name} is mapped to {existing.service}, not {config.name}; nothing was changed",
            f"to remove it, name its service: doki domains remove {name} --service {existing.service}",
        )
    out.line(f"Plan for the custom domain {name}:")
    out.line(f"  - domain mapping {name} -> {existing.service} ({existing.region})", style="red")
    out.line("1 change.")
    plan: dict[str, object] = {
        "domain": name,
        "service": existing.service,
        "region": existing.region,
        "changes": [{"action": "delete", "what": f"domain mapping {name}"}],
    }
    if dry_run:
        out.data({"plan": plan})
        raise typer.Exit(DRY_RUN_CHANGES)
    if not yes:
        confirm_plan(doki, config.name, plan)
    google.domains.delete(name)
    out.data({"plan": plan, "removed": name})
    out.line(f"Removed the mapping of {name}: its DNS records can go.")
