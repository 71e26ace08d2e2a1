"""Domain mappings on the emulator: gcloud's `beta run domain-mappings` against it unchanged, and the answers Google
gives (the records, the conditions, the 409, 404 and 501 in Google's words)."""

from __future__ import annotations

from typing import Any

import pytest
from google.cloud import run_v2

from doki_cli.emulator.run import RUN_HOST
from doki_cli.emulator.server import Emulator
from doki_cli.gcp.clients import EMULATOR_RUN_HOST, ClientFactory
from tests.doki_cli.emulator.rest_client import call
from tests.helpers.gcloud import Gcloud

PATH = "/apis/domains.cloudrun.com/v1/namespaces/p/domainmappings"


def regional(emulator: Emulator, method: str, path: str, body: Any = None, region: str = "us-central1") -> Any:
    return call(emulator, method, path, body, headers={"Host": f"{region}-{RUN_HOST}"})


def mapping(domain: str, service: str = "api") -> dict[str, Any]:
    return {
        "apiVersion": "domains.cloudrun.com/v1",
        "kind": "DomainMapping",
        "metadata": {"name": domain, "namespace": "p"},
        "spec": {"routeName": service},
    }


def serve(clients: ClientFactory, name: str = "api") -> None:
    clients.run_services().create_service(
        parent="projects/p/locations/us-central1",
        service=run_v2.Service(template={"containers": [{"image": "img:1"}]}),
        service_id=name,
    )


def verify(emulator: Emulator, *domains: str) -> None:
    assert call(emulator, "POST", "/_doki/policies", {"project": "p", "verified_domains": list(domains)})[0] == 200


def conditions(answer: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c.get("reason", "")) for c in answer["status"]["conditions"]}


def test_doki_and_the_emulator_name_cloud_runs_endpoints_alike() -> None:
    assert EMULATOR_RUN_HOST == RUN_HOST


def test_a_mapping_of_a_verified_domain_waits_on_its_certificate_with_its_records(
    emulator: Emulator, clients: ClientFactory
) -> None:
    serve(clients)
    verify(emulator, "example.com")
    status, answered = regional(emulator, "POST", PATH, mapping("www.example.com"))
    assert status == 200
    # The create answers before Cloud Run looked at the mapping, as gcloud's poller expects: the status comes later.
    assert answered["status"] == {}
    made = regional(emulator, "GET", PATH + "/www.example.com")[1]
    assert made["metadata"]["labels"]["cloud.googleapis.com/location"] == "us-central1"
    assert made["spec"]["certificateMode"] == "AUTOMATIC"
    assert conditions(made) == {
        "Ready": ("Unknown", "CertificatePending"),
        "CertificateProvisioned": ("Unknown", ""),
        "DomainRoutable": ("True", ""),
        "Retry": ("True", "WaitingForOperation"),
    }
    assert made["status"]["resourceRecords"] == [{"name": "www", "rrdata": "ghs.googlehosted.com.", "type": "CNAME"}]
    assert regional(emulator, "POST", PATH, mapping("www.example.com"))[0] == 409
    certified = call(emulator, "POST", "/_doki/domains:certify", {"project": "p", "domain": "www.example.com"})[1]
    assert conditions(certified) == {
        "Ready": ("True", ""),
        "CertificateProvisioned": ("True", ""),
        "DomainRoutable": ("True", ""),
    }


def test_what_is_wrong_with_a_mapping_shows_in_its_ready_condition(emulator: Emulator, clients: ClientFactory) -> None:
    serve(clients)
    regional(emulator, "POST", PATH, mapping("api.other.org"))
    unverified = regional(emulator, "GET", PATH + "/api.other.org")[1]
    ready = unverified["status"]["conditions"][0]
    assert (ready["type"], ready["status"]) == ("Ready", "False")
    assert ready["message"].startswith("Caller is not authorized to administer the domain api.other.org.")
    verify(emulator, "other.org")
    regional(emulator, "POST", PATH, mapping("app.other.org", service="nothing"))
    no_route = regional(emulator, "GET", PATH + "/app.other.org")[1]
    assert conditions(no_route)["Ready"] == ("False", "RouteMissing")


def test_a_region_without_domain_mappings_refuses_a_create_and_lists_none(emulator: Emulator) -> None:
    status, body = regional(emulator, "POST", PATH, mapping("www.example.com"), region="europe-west3")
    assert (status, body["error"]["status"]) == (501, "UNIMPLEMENTED")
    assert body["error"]["message"] == "Creating domain mappings is not allowed in europe-west3."
    assert regional(emulator, "GET", PATH, region="europe-west3")[1]["items"] == []


def test_a_missing_mapping_is_googles_404(emulator: Emulator) -> None:
    status, body = regional(emulator, "GET", PATH + "/www.example.com")
    assert status == 404
    assert body["error"]["message"] == (
        "Resource 'www.example.com' of kind 'DOMAIN_MAPPING' in region 'us-central1' in project 'p' does not exist."
    )


@pytest.mark.gcloud
def test_gcloud_beta_maps_lists_describes_and_deletes_a_domain(
    gcloud: Gcloud, emulator: Emulator, clients: ClientFactory
) -> None:
    serve(clients)
    verify(emulator, "example.com")
    created = gcloud.run(
        "beta", "run", "domain-mappings", "create", "--service=api", "--domain=www.example.com", "--region=us-central1"
    )
    assert created.returncode == 0, created.stderr.decode()
    assert "ghs.googlehosted.com." in created.stdout.decode()
    listed = gcloud.json("beta", "run", "domain-mappings", "list", "--region=us-central1", "--format=json")
    assert [item["metadata"]["name"] for item in listed] == ["www.example.com"]
    described = gcloud.json(
        "beta",
        "run",
        "domain-mappings",
        "describe",
        "--domain=www.example.com",
        "--region=us-central1",
        "--format=json",
    )
    assert described["spec"]["routeName"] == "api"
    gcloud("beta", "run", "domain-mappings", "delete", "--domain=www.example.com", "--region=us-central1", "--quiet")
    assert regional(emulator, "GET", PATH)[1]["items"] == []
    unverified = gcloud.fails(
        "beta", "run", "domain-mappings", "create", "--service=api", "--domain=api.other.org", "--region=us-central1"
    )
    assert "does not appear to be verified" in unverified
