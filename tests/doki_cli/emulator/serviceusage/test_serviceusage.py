"""Service Usage through the official client: which APIs a project has, enabling and disabling them as long-running
operations, and calls to a disabled API refused as Google refuses them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import service_usage_v1 as su

from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.gcp.clients import ClientFactory

PARENT = "projects/p-usage"
RUN = f"{PARENT}/services/run.googleapis.com"
BUILD = f"{PARENT}/services/cloudbuild.googleapis.com"


@pytest.fixture
def without_build(tmp_path: Path) -> Iterator[Emulator]:
    config = EmulatorConfig(state_dir=tmp_path / "state", disabled_apis=("cloudbuild.googleapis.com",))
    with Emulator(config) as running:
        yield running


@pytest.fixture
def usage(without_build: Emulator) -> Any:
    return ClientFactory(without_build.grpc_address).service_usage()


def state(client: Any, name: str) -> su.State:
    return su.State(client.get_service(request={"name": name}).state)


def test_a_new_project_has_every_api_enabled_but_those_the_emulator_started_without(usage: Any) -> None:
    service = usage.get_service(request={"name": RUN})
    assert (service.name, service.parent, service.config.name, service.config.title, service.state) == (
        RUN,
        PARENT,
        "run.googleapis.com",
        "Cloud Run Admin API",
        su.State.ENABLED,
    )
    assert state(usage, BUILD) == su.State.DISABLED


def test_the_state_filter_lists_enabled_or_disabled_services(usage: Any) -> None:
    disabled = usage.list_services(request={"parent": PARENT, "filter": "state:DISABLED"})
    assert [s.config.name for s in disabled] == ["cloudbuild.googleapis.com"]
    enabled = [s.config.name for s in usage.list_services(request={"parent": PARENT, "filter": "state:ENABLED"})]
    assert "run.googleapis.com" in enabled
    assert "cloudbuild.googleapis.com" not in enabled
    with pytest.raises(exceptions.InvalidArgument, match="state:ENABLED"):
        list(usage.list_services(request={"parent": PARENT, "filter": "state:ON"}))


def test_listing_pages_through_every_known_service(usage: Any) -> None:
    pages = usage.list_services(request={"parent": PARENT, "page_size": 3})
    names = [s.config.name for s in pages]
    assert len(names) == len(set(names)) >= 10
    assert names == sorted(names)


def test_enabling_and_disabling_are_operations_whose_result_is_the_service(usage: Any) -> None:
    enabled = usage.enable_service(request={"name": BUILD}).result(timeout=10)
    assert enabled.service.state == su.State.ENABLED
    assert state(usage, BUILD) == su.State.ENABLED
    disabled = usage.disable_service(request={"name": RUN}).result(timeout=10)
    assert disabled.service.state == su.State.DISABLED
    assert state(usage, RUN) == su.State.DISABLED
    assert state(usage, "projects/another-project/services/run.googleapis.com") == su.State.ENABLED


def test_batch_get_answers_each_named_service_in_order(usage: Any) -> None:
    response = usage.batch_get_services(request={"parent": PARENT, "names": [BUILD, RUN]})
    assert [(s.config.name, s.state) for s in response.services] == [
        ("cloudbuild.googleapis.com", su.State.DISABLED),
        ("run.googleapis.com", su.State.ENABLED),
    ]
    with pytest.raises(exceptions.InvalidArgument, match="not under the parent"):
        usage.batch_get_services(request={"parent": "projects/other", "names": [RUN]})


def test_a_batch_with_an_unknown_service_enables_nothing(usage: Any) -> None:
    request = {"parent": PARENT, "service_ids": ["cloudbuild.googleapis.com", "nothing.googleapis.com"]}
    with pytest.raises(exceptions.PermissionDenied, match=r"nothing\.googleapis\.com"):
        usage.batch_enable_services(request=request)
    assert state(usage, BUILD) == su.State.DISABLED
    done = usage.batch_enable_services(request={**request, "service_ids": ["cloudbuild.googleapis.com"]})
    assert [s.state for s in done.result(timeout=10).services] == [su.State.ENABLED]


def test_a_call_to_a_disabled_api_is_refused_with_the_service_disabled_reason(without_build: Emulator) -> None:
    clients = ClientFactory(without_build.grpc_address)
    builds = clients.cloud_build()
    with pytest.raises(exceptions.PermissionDenied) as refused:
        list(builds.list_builds(project_id="p-usage"))
    assert refused.value.reason == "SERVICE_DISABLED"
    assert refused.value.message.startswith(
        "Cloud Build API has not been used in project p-usage before or it is disabled. Enable it by visiting "
        "https://console.developers.google.com/apis/api/cloudbuild.googleapis.com/overview?project=p-usage then retry."
    )
    clients.service_usage().enable_service(request={"name": BUILD}).result(timeout=10)
    assert list(builds.list_builds(project_id="p-usage")) == []


def test_only_the_project_that_disabled_an_api_is_refused(usage: Any, without_build: Emulator) -> None:
    usage.disable_service(request={"name": f"{PARENT}/services/secretmanager.googleapis.com"}).result(timeout=10)
    secrets = ClientFactory(without_build.grpc_address).secret_manager()
    with pytest.raises(exceptions.PermissionDenied, match="Secret Manager API has not been used in project p-usage"):
        secrets.get_secret(name=f"{PARENT}/secrets/s")
    with pytest.raises(exceptions.NotFound):
        secrets.get_secret(name="projects/p-other/secrets/s")


def test_enabled_apis_survive_a_restart(usage: Any, without_build: Emulator) -> None:
    usage.enable_service(request={"name": BUILD}).result(timeout=10)
    usage.disable_service(request={"name": RUN}).result(timeout=10)
    config = EmulatorConfig(state_dir=without_build.config.state_dir, disabled_apis=("cloudbuild.googleapis.com",))
    with Emulator(config) as restarted:
        client = ClientFactory(restarted.grpc_address).service_usage()
        assert (state(client, BUILD), state(client, RUN)) == (su.State.ENABLED, su.State.DISABLED)


def test_an_emulator_cannot_start_without_an_api_it_does_not_know() -> None:
    with pytest.raises(ValueError, match=r"unknown APIs nothing\.googleapis\.com"):
        Emulator(EmulatorConfig(disabled_apis=("nothing.googleapis.com",)))


def test_the_quota_project_a_client_names_is_the_one_whose_apis_must_be_enabled(
    usage: Any, without_build: Emulator
) -> None:
    # doki names its project as the quota project (x-goog-user-project); a call billed to a project that has
    # disabled the API is refused naming that project, whichever project the resource lives in.
    usage.disable_service(request={"name": f"{PARENT}/services/secretmanager.googleapis.com"}).result(timeout=10)
    billed_to_usage = ClientFactory(without_build.grpc_address, quota_project="p-usage").secret_manager()
    with pytest.raises(exceptions.PermissionDenied) as refused:
        billed_to_usage.get_secret(name="projects/p-other/secrets/s")
    assert refused.value.reason == "SERVICE_DISABLED"
    assert "has not been used in project p-usage before" in refused.value.message
    billed_to_other = ClientFactory(without_build.grpc_address, quota_project="p-other").secret_manager()
    with pytest.raises(exceptions.NotFound):
        billed_to_other.get_secret(name="projects/p-other/secrets/s")  # enabled there: the call goes through
