"""`doki domains`: custom domains as Cloud Run domain mappings on the emulator: refused until the domain is verified,
planned and made, the DNS records printed and checked against a resolver the test controls, the certificate followed,
listed and removed; and a region without domain mappings named with what to use instead."""

from __future__ import annotations

import json

import pytest
from typer.testing import Result

from doki_cli.context import Factory
from doki_cli.dnscheck import Resolved
from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import ClientFactory
from doki_cli.main import app
from tests.doki_cli.emulator.rest_client import call
from tests.helpers import CliRunner

runner = CliRunner()


class World:
    """What the world's DNS answers, as the test sets it."""

    def __init__(self) -> None:
        self.answers: dict[str, Resolved] = {}

    def __call__(self, name: str) -> Resolved:
        return self.answers.get(name, Resolved("", frozenset()))


@pytest.fixture
def world(failed_service: ClientFactory, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.rest_url)
    return World()


def doki(world: World, *args: str) -> Result:
    return runner.invoke(app, list(args), obj=Factory(resolve=world))


def verify(emulator: Emulator, *domains: str) -> None:
    status, _ = call(emulator, "POST", "/_doki/policies", {"project": "doki-e2e", "verified_domains": list(domains)})
    assert status == 200


def test_a_subdomain_is_mapped_its_cname_printed_checked_and_its_certificate_followed(
    world: World, emulator: Emulator
) -> None:
    refused = doki(world, "--json", "domains", "add", "api.example.com")
    assert refused.exit_code == 1
    error = json.loads(refused.stdout)["error"]
    assert error["code"] == "domain_not_verified"
    assert error["hint"].startswith("verify api.example.com or a parent domain of it")

    verify(emulator, "example.com")
    planned = doki(world, "domains", "add", "api.example.com", "--dry-run")
    assert planned.exit_code == 2, planned.output
    assert planned.stdout.splitlines() == [
        "Plan for the custom domain api.example.com:",
        "  + domain mapping api.example.com -> doki-backend (us-central1)",
        "1 change.",
    ]
    added = doki(world, "domains", "add", "api.example.com", "--yes")
    assert added.exit_code == 0, added.output
    assert added.stdout.splitlines()[3:] == [
        'Create these DNS records at the domain\'s DNS provider ("@" is api.example.com itself):',
        "  NAME  TYPE   CONTENTS                DNS NOW",
        "  api   CNAME  ghs.googlehosted.com.   not found yet",
        "  (api.example.com resolves to nothing (it does not resolve) here)",
        "Google issues the certificate once these records resolve: usually within 15 minutes, up to 24 hours. "
        "`doki domains list` shows where it is.",
    ]
    # The record is created at the DNS provider; Google sees it and issues the certificate.
    world.answers["api.example.com"] = Resolved("ghs.googlehosted.com", frozenset({"216.239.32.21"}))
    pending = doki(world, "domains", "list")
    assert pending.stdout.splitlines() == [
        "… api.example.com  doki-backend  waiting for its certificate",
        "  NAME  TYPE   CONTENTS                DNS NOW",
        "  api   CNAME  ghs.googlehosted.com.   found",
    ]
    assert (
        call(emulator, "POST", "/_doki/domains:certify", {"project": "doki-e2e", "domain": "api.example.com"})[0] == 200
    )
    listed = json.loads(doki(world, "--json", "domains", "list").stdout)
    assert [(d["domain"], d["state"]) for d in listed["domains"]] == [("api.example.com", "ready")]
    again = doki(world, "domains", "add", "api.example.com", "--yes")
    assert again.stdout.splitlines() == [
        "Plan for the custom domain api.example.com:",
        "  = domain mapping api.example.com -> doki-backend (us-central1)",
        "No changes.",
        "api.example.com serves doki-backend: https://api.example.com/",
    ]

    removed = doki(world, "domains", "remove", "api.example.com", "--yes")
    assert removed.exit_code == 0, removed.output
    assert removed.stdout.splitlines()[-1] == "Removed the mapping of api.example.com: its DNS records can go."
    assert (
        doki(world, "domains", "list").stdout
        == "No domain mappings in us-central1: `doki domains add DOMAIN` makes one.\n"
    )
    gone = doki(world, "--json", "domains", "remove", "api.example.com", "--yes")
    assert json.loads(gone.stdout)["error"]["code"] == "unknown_domain"


def test_an_apex_domain_gets_googles_four_a_and_four_aaaa_records(world: World, emulator: Emulator) -> None:
    verify(emulator, "example.com")
    world.answers["example.com"] = Resolved("", frozenset({"216.239.32.21", "203.0.113.9"}))
    added = doki(world, "--json", "domains", "add", "example.com", "--yes")
    assert added.exit_code == 0, added.output
    records = json.loads(added.stdout)["records"]
    assert [(r["name"], r["type"], r["data"], r["found"]) for r in records] == [
        ("", "A", "216.239.32.21", True),
        ("", "A", "216.239.34.21", False),
        ("", "A", "216.239.36.21", False),
        ("", "A", "216.239.38.21", False),
        ("", "AAAA", "2001:4860:4802:32::15", False),
        ("", "AAAA", "2001:4860:4802:34::15", False),
        ("", "AAAA", "2001:4860:4802:36::15", False),
        ("", "AAAA", "2001:4860:4802:38::15", False),
    ]


def test_a_region_without_domain_mappings_is_said_with_the_load_balancer_route(
    world: World, emulator: Emulator
) -> None:
    verify(emulator, "example.com")
    # The same service in Frankfurt, where Cloud Run makes no domain mappings (it exists; its revision never runs).
    assert doki(world, "--region", "europe-west3", "deploy", "--image", "img:1", "--yes").exit_code == 1
    result = doki(world, "--json", "--region", "europe-west3", "domains", "add", "api.example.com", "--yes")
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "domain_mappings_unavailable"
    assert error["message"] == (
        "mapping api.example.com to doki-backend: Cloud Run has no domain mappings in europe-west3 (Creating domain "
        "mappings is not allowed in europe-west3.)"
    )
    assert error["hint"].startswith("map the domain through a global external Application Load Balancer")
    listed = doki(world, "--region", "europe-west3", "domains", "list")
    assert listed.stdout == "No domain mappings in europe-west3: `doki domains add DOMAIN` makes one.\n"


def test_a_domain_mapped_to_another_service_is_not_taken_over(
    world: World, emulator: Emulator, failed_service: ClientFactory
) -> None:
    from google.cloud import run_v2

    verify(emulator, "example.com")
    assert doki(world, "domains", "add", "api.example.com", "--yes").exit_code == 0
    other = run_v2.Service(template={"containers": [{"image": "img:1"}]})
    failed_service.run_services().create_service(
        parent="projects/doki-e2e/locations/us-central1", service=other, service_id="other-api"
    )
    result = doki(world, "--json", "domains", "add", "api.example.com", "--service", "other-api", "--yes")
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert (error["code"], error["hint"]) == (
        "domain_in_use",
        "remove it first: doki domains remove api.example.com --service doki-backend",
    )


def test_bad_domains_are_refused_before_any_call(world: World, emulator: Emulator) -> None:
    calls = sum(emulator.faults.calls.values())
    for bad in ("https://api.example.com", "*.example.com", "localhost", "a" * 70 + ".com"):
        result = doki(world, "--json", "domains", "add", bad)
        assert json.loads(result.stdout)["error"]["code"] == "bad_domain", bad
    assert sum(emulator.faults.calls.values()) == calls


def test_the_dns_check_reads_a_cname_chain_and_any_spelling_of_an_address() -> None:
    from doki_cli.dnscheck import check
    from doki_cli.model import DnsRecord

    cname = (DnsRecord("api", "CNAME", "ghs.googlehosted.com."),)
    further = Resolved("ghs-edge.example.net", frozenset({"192.0.2.1"}), frozenset({"ghs.googlehosted.com"}))
    assert [seen.found for seen in check("api.example.com", cname, further)] == [True]
    aaaa = (DnsRecord("", "AAAA", "2001:4860:4802:32::15"),)
    spelled = Resolved("", frozenset({"2001:4860:4802:32:0:0:0:15"}))
    assert [seen.found for seen in check("example.com", aaaa, spelled)] == [True]
    assert [seen.found for seen in check("example.com", aaaa, Resolved("", frozenset()))] == [False]


def test_this_machines_resolver_answers_for_a_name_it_knows() -> None:
    from doki_cli.dnscheck import resolve

    assert "127.0.0.1" in resolve("localhost").addresses


def test_a_failed_mapping_is_planned_and_made_anew(world: World, emulator: Emulator) -> None:
    # Mapped before the domain was verified: Cloud Run made it, and failed it.
    headers = {"Host": "us-central1-run.doki-emulator"}
    body = {"metadata": {"name": "api.example.com"}, "spec": {"routeName": "doki-backend"}}
    path = "/apis/domains.cloudrun.com/v1/namespaces/doki-e2e/domainmappings"
    assert call(emulator, "POST", path, body, headers=headers)[0] == 200
    failed = json.loads(doki(world, "--json", "domains", "list").stdout)["domains"]
    assert [(d["domain"], d["state"]) for d in failed] == [("api.example.com", "failed")]
    verify(emulator, "example.com")
    planned = doki(world, "domains", "add", "api.example.com", "--dry-run")
    assert planned.exit_code == 2, planned.output
    assert planned.stdout.splitlines()[1].startswith(
        "  ~ domain mapping api.example.com -> doki-backend (us-central1): failed (Caller is not authorized to "
        "administer the domain api.example.com."
    )
    assert planned.stdout.splitlines()[1].endswith("), made anew")
    assert doki(world, "domains", "add", "api.example.com", "--yes").exit_code == 0
    remade = json.loads(doki(world, "--json", "domains", "list").stdout)["domains"]
    assert [(d["domain"], d["state"]) for d in remade] == [("api.example.com", "waiting for its certificate")]


def test_a_create_whose_answer_was_lost_is_not_reported_as_a_conflict(world: World, emulator: Emulator) -> None:
    verify(emulator, "example.com")
    emulator.faults.fail("google.cloud.run.v1.DomainMappings/CreateDomainMapping", "UNAVAILABLE", answer_lost=True)
    added = doki(world, "--json", "domains", "add", "api.example.com", "--yes")
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["state"] == "waiting for its certificate"


def test_remove_names_the_service_a_domain_is_mapped_to(world: World, emulator: Emulator) -> None:
    verify(emulator, "example.com")
    assert doki(world, "domains", "add", "api.example.com", "--yes").exit_code == 0
    result = doki(world, "--json", "domains", "remove", "api.example.com", "--service", "other-api", "--yes")
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert (error["code"], error["message"]) == (
        "domain_in_use",
        "api.example.com is mapped to doki-backend, not other-api; nothing was changed",
    )
    assert [d["domain"] for d in json.loads(doki(world, "--json", "domains", "list").stdout)["domains"]] == [
        "api.example.com"
    ]
