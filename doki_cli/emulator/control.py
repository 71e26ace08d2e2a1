"""doki's own control API on the REST port: status, fault injection, concurrent changes, shutdown."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

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
        project made today behaves)."""
        body = request.json()
        project = body.get("project")
        known = {
            "logging_read_requests_per_minute",
            "iam_propagation_seconds",
            "callers_inside_vpc",
            "domain_restricted_sharing",
        }
        unknown = sorted(set(body) - known - {"project"})
        if not isinstance(project, str) or not project or unknown or len(body) < 2:
            raise invalid_argument(
                'send {"project": P, SETTING: VALUE}; settings: logging_read_requests_per_minute (a number, or null '
                "for no limit), iam_propagation_seconds (a number), callers_inside_vpc and "
                "domain_restricted_sharing (true or false)" + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            )
        if "iam_propagation_seconds" in body:
            seconds = body["iam_propagation_seconds"]
            if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
                raise invalid_argument("iam_propagation_seconds must be a number of seconds, 0 or more")
            emulator.iam_propagation.set(project, float(seconds))
        if "domain_restricted_sharing" in body:
            if not isinstance(body["domain_restricted_sharing"], bool):
                raise invalid_argument("domain_restricted_sharing must be true or false")
            emulator.org_policy.restrict_domains(project, body["domain_restricted_sharing"])
        if "callers_inside_vpc" in body:
            if not isinstance(body["callers_inside_vpc"], bool):
                raise invalid_argument("callers_inside_vpc must be true or false")
            emulator.run.set_callers_inside(project, body["callers_inside_vpc"])
        if "logging_read_requests_per_minute" in body:
            limit = body["logging_read_requests_per_minute"]
            if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
                raise invalid_argument("logging_read_requests_per_minute must be a whole number, 0 or more, or null")
            emulator.log_reads.set_limit(project, limit)
        return Response.json(
            {
                "project": project,
                "logging_read_requests_per_minute": emulator.log_reads.limit(project),
                "iam_propagation_seconds": emulator.iam_propagation.seconds(project),
                "callers_inside_vpc": emulator.run.callers_inside(project),
                "domain_restricted_sharing": emulator.org_policy.domains_restricted(project),
            }
        )

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
    router.add("POST", r"/_doki/shutdown", shutdown)
