"""doki's own control API on the REST port: status, fault injection, concurrent changes, shutdown."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from doki_cli.emulator.errors import invalid_argument, not_found
from doki_cli.emulator.rest import Request, Response, Router

if TYPE_CHECKING:
    from doki_cli.emulator.server import Emulator


def add_routes(router: Router, emulator: Emulator) -> None:
    faults = emulator.faults

    def status(request: Request) -> Response:
        return Response.json(emulator.status())

    def show_faults(request: Request) -> Response:
        return Response.json(faults.snapshot())

    def add_fault(request: Request) -> Response:
        body = request.json()
        if "lro_delay" in body:
            delay = body["lro_delay"]
            if not isinstance(delay, (int, float)) or delay < 0:
                raise invalid_argument("lro_delay must be a number of seconds, 0 or more")
            faults.lro_delay = float(delay)
        elif "revision_failure" in body:
            spec = body["revision_failure"]
            if not isinstance(spec, dict) or not isinstance(spec.get("service"), str):
                raise invalid_argument('revision_failure needs {"service": NAME or "*", "times": N, "message": M}')
            faults.fail_revisions(spec["service"], times=int(spec.get("times", 1)), message=spec.get("message"))
        elif isinstance(body.get("method"), str) and isinstance(body.get("code"), str):
            faults.fail(
                body["method"],
                body["code"],
                times=int(body.get("times", 1)),
                message=body.get("message"),
                answer_lost=bool(body.get("answer_lost", False)),
            )
        else:
            raise invalid_argument(
                'send {"method": M, "code": STATUS, "times": N, "answer_lost": BOOL}, {"lro_delay": SECONDS} '
                'or {"revision_failure": {"service": NAME}}'
            )
        return Response.json(faults.snapshot())

    def clear_faults(request: Request) -> Response:
        faults.clear()
        return Response.json(faults.snapshot())

    def touch(request: Request) -> Response:
        resource = request.json().get("resource")
        if not isinstance(resource, str):
            raise invalid_argument('send {"resource": "projects/P/..."}')
        if not emulator.touch(resource):
            raise not_found(f"{resource} is not a resource the emulator can change")
        return Response.json({"touched": resource})

    def set_policy(request: Request) -> Response:
        """A project's settings where Google's behaviour varies per organisation or project (each defaults to how a
        project made today behaves). Every value is checked before any applies."""
        body = request.json()
        if not isinstance(body, dict):
            raise invalid_argument('send a JSON object: {"project": P, SETTING: VALUE}')
        project = body.get("project")
        settings = {key: value for key, value in body.items() if key != "project"}
        unknown = sorted(set(settings) - set(POLICY_SETTINGS))
        if not isinstance(project, str) or not project or unknown or not settings:
            raise invalid_argument(
                'send {"project": P, SETTING: VALUE}; settings: '
                + ", ".join(f"{name} ({kind})" for name, (kind, _) in POLICY_SETTINGS.items())
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            )
        for name, value in settings.items():
            kind, valid = POLICY_SETTINGS[name]
            if not valid(value):
                raise invalid_argument(f"{name} must be {kind}")
        for name, value in settings.items():
            apply_policy(emulator, project, name, value)
        return Response.json(
            {
                "project": project,
                "logging_read_requests_per_minute": emulator.log_reads.limit(project),
                "iam_propagation_seconds": emulator.iam_propagation.seconds(project),
                "callers_inside_vpc": emulator.run.callers_inside(project),
                "domain_restricted_sharing": emulator.org_policy.domains_restricted(project),
                "verified_domains": emulator.domains.verified(project),
            }
        )

    def add_account(request: Request) -> Response:
        """A service account made behind IAM Admin's back: one of another project, or one a test needs to exist
        without creating it through doki."""
        body = request.json()
        project, email = (body.get("project"), body.get("email")) if isinstance(body, dict) else (None, None)
        if not isinstance(project, str) or not project or not isinstance(email, str) or not _EMAIL.fullmatch(email):
            raise invalid_argument('send {"project": P, "email": "NAME@P.iam.gserviceaccount.com"}')
        account = emulator.accounts.add(project, email)
        return Response.json({"project": account.project, "email": account.email, "name": account.name})

    def run_monitoring(request: Request) -> Response:
        """Run the uptime checks now (all, or one project's), then the alerting, instead of waiting for their
        periods: what each checker location saw, and the incidents open afterwards."""
        body = request.json()
        project = body.get("project") if isinstance(body, dict) else None
        if project is not None and (not isinstance(project, str) or not project):
            raise invalid_argument('send {} or {"project": P}')
        return Response.json(emulator.monitoring.run_now(project))

    def monitoring_events(request: Request) -> Response:
        """The incidents the alerting opened and closed, and the notifications it sent (the emails Google would
        send), oldest first."""
        return Response.json(emulator.monitoring.config.events())

    def set_price(request: Request) -> Response:
        """A price of the Cloud Billing Catalog: the SKU `description` costs `price` USD per unit from now on."""
        body = request.json()
        description, price = body.get("description"), body.get("price")
        if not isinstance(description, str) or isinstance(price, bool) or not isinstance(price, (int, float)):
            raise invalid_argument('send {"description": "Services CPU (Request-based billing)", "price": 0.000024}')
        return Response.json(emulator.catalog.set_price(description, float(price)))

    def certify(request: Request) -> Response:
        """A domain mapping's certificate is issued, as Google issues it once the DNS records it asked for resolve."""
        body = request.json()
        project, domain = body.get("project"), body.get("domain")
        if not isinstance(project, str) or not isinstance(domain, str):
            raise invalid_argument('send {"project": P, "domain": "www.example.com"}')
        return Response.json(emulator.domains.certify(project, domain))

    def shutdown(request: Request) -> Response:
        # Answer first: stopping waits for this very server to finish its requests.
        threading.Thread(target=emulator.stop, daemon=True).start()
        return Response.json({"stopping": True})

    router.add("GET", r"/_doki/status", status)
    router.add("GET", r"/_doki/faults", show_faults)
    router.add("POST", r"/_doki/faults", add_fault)
    router.add("DELETE", r"/_doki/faults", clear_faults)
    router.add("POST", r"/_doki/touch", touch)
    router.add("POST", r"/_doki/policies", set_policy)
    router.add("POST", r"/_doki/service-accounts", add_account)
    router.add("POST", r"/_doki/monitoring:run", run_monitoring)
    router.add("GET", r"/_doki/monitoring/events", monitoring_events)
    router.add("POST", r"/_doki/billing/prices", set_price)
    router.add("POST", r"/_doki/domains:certify", certify)
    router.add("POST", r"/_doki/shutdown", shutdown)


_EMAIL = re.compile(r"[^@\s]+@[-a-z0-9.]+\.gserviceaccount\.com")


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _seconds(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


# Each per-project setting: what it must be (for the refusal), and its check.
POLICY_SETTINGS: dict[str, tuple[str, Callable[[object], bool]]] = {
    "logging_read_requests_per_minute": (
        "a whole number, 0 or more, or null for no limit",
        lambda v: v is None or _count(v),
    ),
    "iam_propagation_seconds": ("a number of seconds, 0 or more", _seconds),
    "callers_inside_vpc": ("true or false", lambda v: isinstance(v, bool)),
    "domain_restricted_sharing": ("true or false", lambda v: isinstance(v, bool)),
    "verified_domains": (
        "a list of domain names (the project's verified domains)",
        lambda v: isinstance(v, list) and all(isinstance(d, str) and d for d in v),
    ),
}


def apply_policy(emulator: Emulator, project: str, name: str, value: Any) -> None:
    if name == "logging_read_requests_per_minute":
        emulator.log_reads.set_limit(project, value)
    elif name == "iam_propagation_seconds":
        emulator.iam_propagation.set(project, float(value))
    elif name == "callers_inside_vpc":
        emulator.run.set_callers_inside(project, value)
    elif name == "domain_restricted_sharing":
        emulator.org_policy.restrict_domains(project, value)
    elif name == "verified_domains":
        emulator.domains.set_verified(project, value)
