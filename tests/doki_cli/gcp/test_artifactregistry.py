"""The Artifact Registry adapter and the registry login the client factory decides: on Google an access token of
Application Default Credentials (from a local stand-in of Google's token endpoint), against the emulator its
registry; the digest a tag points at; pushes that fail with the fix for the registry they went to."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest

from doki_cli.emulator.server import Emulator
from doki_cli.errors import DokiError
from doki_cli.gcp.clients import ClientFactory, RegistryLogin
from doki_cli.gcp.google import Google
from tests.fakes.google_oauth import ACCESS_TOKEN, FakeTokenEndpoint

IMAGE = "us-central1-docker.pkg.dev/p/apps/api"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


@pytest.fixture
def google(emulator: Emulator, clients: ClientFactory) -> Google:
    return Google(clients, "p", "us-central1")


def test_the_repository_is_created_once_as_a_docker_repository(google: Google, clients: ClientFactory) -> None:
    assert google.artifact_registry.ensure_repository("apps") is True
    assert google.artifact_registry.ensure_repository("apps") is False
    repository = clients.artifact_registry().get_repository(name="projects/p/locations/us-central1/repositories/apps")
    assert repository.format_.name == "DOCKER"


def test_the_digest_of_a_tag_is_the_image_it_points_at_now(google: Google, emulator: Emulator) -> None:
    google.artifact_registry.ensure_repository("apps")
    emulator.registry.record_image(f"{IMAGE}:v1", DIGEST_A, 10)
    emulator.registry.record_image(f"{IMAGE}:latest", DIGEST_A, 10)
    emulator.registry.record_image(f"{IMAGE}:latest", DIGEST_B, 10)
    emulator.registry.record_image(f"{IMAGE}-worker:v2", DIGEST_B, 10)
    assert google.artifact_registry.digest_of(f"{IMAGE}:v1") == DIGEST_A
    assert google.artifact_registry.digest_of(f"{IMAGE}:latest") == DIGEST_B
    assert google.artifact_registry.digest_of(f"{IMAGE}:v2") is None  # that tag is on another image
    assert google.artifact_registry.digest_of(f"{IMAGE}:v9") is None


def test_the_digest_of_a_tag_in_a_missing_repository_is_none(google: Google) -> None:
    assert google.artifact_registry.digest_of("us-central1-docker.pkg.dev/p/nowhere/api:v1") is None


def test_the_digest_of_a_name_without_a_tag_is_refused_with_the_form_to_use(google: Google) -> None:
    with pytest.raises(DokiError) as caught:
        google.artifact_registry.digest_of(IMAGE)
    assert (caught.value.code, caught.value.hint) == (
        "bad_image",
        "name it LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE:TAG",
    )


def test_against_the_emulator_images_are_pushed_under_its_address_with_a_stand_in_token() -> None:
    login = ClientFactory("127.0.0.1:8470", registry="127.0.0.1:8472").registry_login("europe-west1")
    assert login == RegistryLogin("127.0.0.1:8472", "oauth2accesstoken", "emulator", prefix="127.0.0.1:8472/")
    assert login.reference(f"{IMAGE}:v1") == f"127.0.0.1:8472/{IMAGE}:v1"


def test_an_emulator_without_its_registry_variable_says_how_to_set_it() -> None:
    with pytest.raises(DokiError) as caught:
        ClientFactory.from_env({"DOKI_EMULATOR": "127.0.0.1:8470"}).registry_login("us-central1")
    assert (caught.value.code, caught.value.hint) == (
        "no_registry_emulator",
        'set both with `eval "$(doki emulator env)"`',
    )


def test_on_google_the_login_is_an_access_token_of_application_default_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeTokenEndpoint() as endpoint:
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(endpoint.key_file(tmp_path / "key.json")))
        login = ClientFactory().registry_login("europe-west1")
    assert login == RegistryLogin("europe-west1-docker.pkg.dev", "oauth2accesstoken", ACCESS_TOKEN, prefix="")
    assert login.reference(f"{IMAGE}:v1") == f"{IMAGE}:v1"
    assert login.auth_config() == {
        "username": "oauth2accesstoken",
        "password": ACCESS_TOKEN,
        "serveraddress": "europe-west1-docker.pkg.dev",
    }
    (assertion,) = endpoint.assertions
    claims = jwt.decode(assertion, options={"verify_signature": False})
    assert claims["iss"] == "pusher@proj.iam.gserviceaccount.com"
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"


def test_a_refused_token_request_says_the_login_expired_and_how_to_sign_in_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeTokenEndpoint(refuse=True) as endpoint:
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(endpoint.key_file(tmp_path / "key.json")))
        with pytest.raises(DokiError) as caught:
            ClientFactory().registry_login("us-central1")
    assert caught.value.code == "credentials_expired"
    assert caught.value.message.startswith(
        "getting an access token for the registry: Google no longer accepts the saved login ("
    )
    assert "Invalid JWT Signature." in caught.value.message
    assert caught.value.hint == (
        "sign in again: gcloud auth application-default login, or check GOOGLE_APPLICATION_CREDENTIALS (in CI, the "
        "credentials the job uses)"
    )


def test_no_application_default_credentials_says_how_to_get_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(DokiError) as caught:
        ClientFactory().registry_login("us-central1")
    assert caught.value.code == "no_credentials"


def test_pushing_an_image_that_is_not_built_says_to_build_it(emulator: Emulator, docker_client: Any) -> None:
    from doki_cli.engine import DockerEngine

    factory = ClientFactory(emulator.grpc_address, emulator.rest_url, emulator.registry_address)
    with pytest.raises(DokiError) as caught:
        Google(factory, "p").artifact_registry.push(DockerEngine(docker_client), [f"{IMAGE}:never-built"], print)
    assert (caught.value.code, caught.value.message, caught.value.hint) == (
        "image_not_found",
        f"there is no local image {IMAGE}:never-built",
        "build it first: doki build",
    )


def test_a_push_to_an_emulator_registry_that_does_not_answer_says_to_check_the_emulator(
    emulator: Emulator, docker_client: Any, tmp_path: Path, reserve_port: Callable[[], int]
) -> None:
    from docker.errors import ImageNotFound

    from doki_cli.engine import DockerEngine

    dead = f"127.0.0.1:{reserve_port()}"
    factory = ClientFactory(emulator.grpc_address, emulator.rest_url, dead)
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY app.txt /app.txt\n")
    (tmp_path / "app.txt").write_text("hello\n")
    docker_client.images.build(path=str(tmp_path), tag=f"{IMAGE}:v1", network_mode="host")
    try:
        with pytest.raises(DokiError) as caught:
            Google(factory, "p").artifact_registry.push(DockerEngine(docker_client), [f"{IMAGE}:v1"], print)
    finally:
        for name in (f"{IMAGE}:v1", f"{dead}/{IMAGE}:v1"):
            with contextlib.suppress(ImageNotFound):
                docker_client.images.remove(name, force=True)
    assert caught.value.code == "registry_unreachable"
    assert caught.value.message.startswith(f"pushing {dead}/{IMAGE}:v1 failed: ")
    assert "connection refused" in caught.value.message
    assert caught.value.hint == (
        "check that the emulator runs (doki emulator status) and that this shell points at it: "
        'eval "$(doki emulator env)"'
    )
