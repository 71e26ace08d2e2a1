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
    assert error["hint"].startswith("verify example.com in Google Search Console")

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
    for bad in ("https://api.example.com", "*.example.com", "localhost", "a" * 70 + ".com"):
        result = doki(world, "--json", "domains", "add", bad)
        assert json.loads(result.stdout)["error"]["code"] == "bad_domain", bad
