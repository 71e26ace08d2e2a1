"""Artifact Registry through the official client: repositories (long-running create and delete), the Docker images
Cloud Build records, IAM on repositories, and everything surviving an emulator restart."""

from __future__ import annotations

import re
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import artifactregistry_v1 as ar
from google.iam.v1 import policy_pb2
from google.protobuf import empty_pb2, field_mask_pb2

from doki_cli.emulator.projects import compute_default_account
from doki_cli.emulator.server import Emulator, EmulatorConfig
from doki_cli.gcp.clients import ClientFactory

# An account that exists in every project (IAM policies name only accounts that exist).
P_DEFAULT_ACCOUNT = f"serviceAccount:{compute_default_account('p')}"

PARENT = "projects/p/locations/us-central1"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


@pytest.fixture
def registry(clients: ClientFactory) -> Any:
    return clients.artifact_registry()


def _create(client: Any, repository_id: str = "apps", **fields: Any) -> ar.Repository:
    repository = ar.Repository({"format_": ar.Repository.Format.DOCKER, **fields})
    result: ar.Repository = client.create_repository(
        parent=PARENT, repository_id=repository_id, repository=repository
    ).result(timeout=10)
    return result


def test_creating_a_repository_answers_with_an_operation_whose_result_is_the_repository(registry: Any) -> None:
    operation = registry.create_repository(
        parent=PARENT,
        repository_id="apps",
        repository=ar.Repository(format_=ar.Repository.Format.DOCKER, description="images", labels={"team": "web"}),
    )
    assert operation.operation.name.startswith(f"{PARENT}/operations/")
    repository = operation.result(timeout=10)
    assert repository.name == f"{PARENT}/repositories/apps"
    assert repository.format_ == ar.Repository.Format.DOCKER
    assert repository.mode == ar.Repository.Mode.STANDARD_REPOSITORY
    assert (repository.description, dict(repository.labels)) == ("images", {"team": "web"})
    assert repository.registry_uri == "us-central1-docker.pkg.dev/p/apps"
    assert repository.create_time == repository.update_time
    assert isinstance(operation.metadata, ar.OperationMetadata)


def test_a_second_repository_with_the_same_id_already_exists(registry: Any) -> None:
    _create(registry)
    with pytest.raises(exceptions.AlreadyExists, match="the repository already exists"):
        _create(registry)


@pytest.mark.parametrize("repository_id", ["1apps", "Apps", "my_apps", "-apps", "a" * 64, ""])
def test_a_repository_id_outside_lowercase_letters_digits_and_hyphens_is_invalid(
    registry: Any, repository_id: str
) -> None:
    with pytest.raises(exceptions.InvalidArgument, match=f'Invalid repository ID "{repository_id}": it must start'):
        _create(registry, repository_id)


def test_the_longest_valid_repository_id_has_63_characters(registry: Any) -> None:
    assert _create(registry, "a" + "-9" * 31).name == f"{PARENT}/repositories/a" + "-9" * 31


def test_a_repository_without_a_format_is_invalid(registry: Any) -> None:
    with pytest.raises(exceptions.InvalidArgument, match=r"Repository format must be specified\."):
        registry.create_repository(parent=PARENT, repository_id="apps", repository=ar.Repository())


def test_getting_a_missing_repository_is_not_found_naming_it(registry: Any) -> None:
    with pytest.raises(exceptions.NotFound, match=re.escape(f'Repository "{PARENT}/repositories/nope" not found.')):
        registry.get_repository(name=f"{PARENT}/repositories/nope")


def test_get_answers_with_the_created_repository(registry: Any) -> None:
    created = _create(registry, description="images")
    assert registry.get_repository(name=created.name) == created


def test_list_pages_through_the_repositories_of_one_location_in_name_order(registry: Any) -> None:
    for repository_id in ("c", "a", "b"):
        _create(registry, repository_id)
    registry.create_repository(
        parent="projects/p/locations/europe-west1",
        repository_id="elsewhere",
        repository=ar.Repository(format_=ar.Repository.Format.DOCKER),
    ).result(timeout=10)
    first = registry.list_repositories(request={"parent": PARENT, "page_size": 2})
    assert [r.name.rsplit("/", 1)[1] for r in first.repositories] == ["a", "b"]
    assert first.next_page_token
    assert [r.name.rsplit("/", 1)[1] for r in first] == ["a", "b", "c"]  # the pager fetches the second page


def test_update_changes_only_the_fields_in_the_mask(registry: Any) -> None:
    created = _create(registry, description="old", labels={"team": "web"})
    updated = registry.update_repository(
        repository=ar.Repository(name=created.name, description="new", labels={"team": "ops"}),
        update_mask=field_mask_pb2.FieldMask(paths=["description"]),
    )
    assert (updated.description, dict(updated.labels)) == ("new", {"team": "web"})
    assert updated.update_time > created.update_time
    assert registry.get_repository(name=created.name).description == "new"


def test_the_format_of_a_repository_cannot_be_updated(registry: Any) -> None:
    created = _create(registry)
    with pytest.raises(exceptions.InvalidArgument, match=r'Invalid update_mask path "format": it cannot be updated\.'):
        registry.update_repository(
            repository=ar.Repository(name=created.name, format_=ar.Repository.Format.MAVEN),
            update_mask=field_mask_pb2.FieldMask(paths=["format"]),
        )


def test_updating_a_missing_repository_is_not_found(registry: Any) -> None:
    with pytest.raises(exceptions.NotFound):
        registry.update_repository(
            repository=ar.Repository(name=f"{PARENT}/repositories/nope", description="x"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        )


def test_delete_is_a_long_running_operation_that_removes_the_repository(registry: Any) -> None:
    created = _create(registry)
    operation = registry.delete_repository(name=created.name)
    assert operation.result(timeout=10) == empty_pb2.Empty()
    with pytest.raises(exceptions.NotFound):
        registry.get_repository(name=created.name)
    with pytest.raises(exceptions.NotFound):
        registry.delete_repository(name=created.name)


def test_recorded_images_are_listed_with_digest_uri_tags_and_size(emulator: Emulator, registry: Any) -> None:
    repository = _create(registry)
    emulator.registry.record_image("us-central1-docker.pkg.dev/p/apps/team/web:v1", DIGEST_A, 1234)
    [image] = registry.list_docker_images(parent=repository.name)
    assert image.name == f"{repository.name}/dockerImages/team%2Fweb@{DIGEST_A}"
    assert image.uri == f"us-central1-docker.pkg.dev/p/apps/team/web@{DIGEST_A}"
    assert list(image.tags) == ["v1"]
    assert image.image_size_bytes == 1234
    assert image.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    assert image.upload_time is not None
    assert registry.get_repository(name=repository.name).size_bytes == 1234


def test_a_tag_pushed_again_moves_to_the_new_digest(emulator: Emulator, registry: Any) -> None:
    repository = _create(registry)
    emulator.registry.record_image("us-central1-docker.pkg.dev/p/apps/web:v1", DIGEST_A, 10)
    emulator.registry.record_image("us-central1-docker.pkg.dev/p/apps/web:latest", DIGEST_A, 10)
    emulator.registry.record_image("us-central1-docker.pkg.dev/p/apps/web:latest", DIGEST_B, 20)
    tags = {
        image.uri.rsplit("@", 1)[1]: list(image.tags) for image in registry.list_docker_images(parent=repository.name)
    }
    assert tags == {DIGEST_A: ["v1"], DIGEST_B: ["latest"]}


def test_an_image_pushed_without_a_tag_is_tagged_latest(emulator: Emulator, registry: Any) -> None:
    repository = _create(registry)
    emulator.registry.record_image("us-central1-docker.pkg.dev/p/apps/web", DIGEST_A, 10)
    [image] = registry.list_docker_images(parent=repository.name)
    assert list(image.tags) == ["latest"]


def test_a_docker_image_is_found_by_its_plain_or_url_encoded_name(emulator: Emulator, registry: Any) -> None:
    repository = _create(registry)
    emulator.registry.record_image("us-central1-docker.pkg.dev/p/apps/team/web:v1", DIGEST_A, 10)
    encoded = registry.get_docker_image(name=f"{repository.name}/dockerImages/team%2Fweb@{DIGEST_A}")
    plain = registry.get_docker_image(name=f"{repository.name}/dockerImages/team/web@{DIGEST_A}")
    assert encoded == plain
    assert list(plain.tags) == ["v1"]
    with pytest.raises(exceptions.NotFound):
        registry.get_docker_image(name=f"{repository.name}/dockerImages/team/web@{DIGEST_B}")


def test_docker_images_can_be_listed_newest_first(emulator: Emulator, registry: Any) -> None:
    repository = _create(registry)
    emulator.registry.record_image("us-central1-docker.pkg.dev/p/apps/web:v1", DIGEST_A, 10)
    emulator.registry.record_image("us-central1-docker.pkg.dev/p/apps/web:v2", DIGEST_B, 10)
    images = registry.list_docker_images(request={"parent": repository.name, "order_by": "upload_time desc"})
    assert [list(image.tags) for image in images] == [["v2"], ["v1"]]


def test_deleting_a_repository_deletes_its_images(emulator: Emulator, registry: Any) -> None:
    repository = _create(registry)
    emulator.registry.record_image("us-central1-docker.pkg.dev/p/apps/web:v1", DIGEST_A, 10)
    registry.delete_repository(name=repository.name).result(timeout=10)
    _create(registry)
    assert list(registry.list_docker_images(parent=repository.name)) == []


def test_an_image_uri_maps_to_its_repository_only_when_that_docker_repository_exists(
    emulator: Emulator, registry: Any
) -> None:
    _create(registry)
    _create(registry, "jars", format_=ar.Repository.Format.MAVEN)
    assert emulator.registry.repository_for("us-central1-docker.pkg.dev/p/apps/web:v1") == f"{PARENT}/repositories/apps"
    assert emulator.registry.repository_for("us-central1-docker.pkg.dev/p/other/web:v1") is None
    assert emulator.registry.repository_for("europe-west1-docker.pkg.dev/p/apps/web:v1") is None
    assert emulator.registry.repository_for("us-central1-docker.pkg.dev/p/jars/web:v1") is None
    assert emulator.registry.repository_for("gcr.io/p/web:v1") is None


def test_a_repository_has_an_iam_policy_guarded_by_its_etag(registry: Any) -> None:
    repository = _create(registry)
    policy = registry.get_iam_policy(request={"resource": repository.name})
    policy.bindings.append(policy_pb2.Binding(role="roles/artifactregistry.reader", members=[P_DEFAULT_ACCOUNT]))
    stored = registry.set_iam_policy(request={"resource": repository.name, "policy": policy})
    assert [b.role for b in stored.bindings] == ["roles/artifactregistry.reader"]
    with pytest.raises(exceptions.Aborted):
        registry.set_iam_policy(request={"resource": repository.name, "policy": policy})
    with pytest.raises(exceptions.NotFound):
        registry.get_iam_policy(request={"resource": f"{PARENT}/repositories/nope"})


def test_repositories_images_and_policies_survive_a_restart(emulator: Emulator, registry: Any) -> None:
    repository = _create(registry, description="images")
    emulator.registry.record_image("us-central1-docker.pkg.dev/p/apps/team/web:v1", DIGEST_A, 10)
    policy = registry.get_iam_policy(request={"resource": repository.name})
    policy.bindings.append(policy_pb2.Binding(role="roles/artifactregistry.reader", members=["allUsers"]))
    registry.set_iam_policy(request={"resource": repository.name, "policy": policy})
    images = list(registry.list_docker_images(parent=repository.name))
    emulator.stop()
    with Emulator(EmulatorConfig(state_dir=emulator.config.state_dir)) as restarted:
        client = ClientFactory(restarted.grpc_address, restarted.rest_url).artifact_registry()
        assert client.get_repository(name=repository.name) == registry_copy(repository, size_bytes=10)
        assert list(client.list_docker_images(parent=repository.name)) == images
        assert [b.role for b in client.get_iam_policy(request={"resource": repository.name}).bindings] == [
            "roles/artifactregistry.reader"
        ]
        with pytest.raises(exceptions.AlreadyExists):
            _create(client)


def registry_copy(repository: ar.Repository, **changes: Any) -> ar.Repository:
    copy = ar.Repository(repository)
    for field, value in changes.items():
        setattr(copy, field, value)
    return copy


def test_an_image_is_held_by_its_current_tag_latest_when_untagged_or_its_digest(
    emulator: Emulator, registry: Any
) -> None:
    _create(registry)
    image = "us-central1-docker.pkg.dev/p/apps/api"
    emulator.registry.record_image(f"{image}:v1", DIGEST_A, 10)
    emulator.registry.record_image(f"{image}", DIGEST_B, 10)  # no tag: latest
    held = emulator.registry.has_image

    assert held(f"{image}:v1") and held(f"{image}:latest") and held(image)
    assert held(f"{image}@{DIGEST_A}") and held(f"{image}:v1@{DIGEST_A}")
    assert not held(f"{image}:v2") and not held(f"{image}@sha256:{'c' * 64}")
    assert not held("us-central1-docker.pkg.dev/p/apps/other:v1") and not held("docker.io/library/api:v1")
    emulator.registry.record_image(f"{image}:v1", DIGEST_B, 10)  # the tag moves
    assert held(f"{image}:v1@{DIGEST_B}") and held(f"{image}@{DIGEST_A}")  # the old image stays, untagged
