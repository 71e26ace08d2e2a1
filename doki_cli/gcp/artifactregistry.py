"""Artifact Registry, through google-cloud-artifact-registry: the only module that imports it.

The Docker repository images go to (created when missing), the digest a tag points at, and pushes of local images.
A push itself goes through the Docker engine (`doki_cli.engine` owns the docker SDK), logged in as the client
factory decides: Artifact Registry with an access token of Application Default Credentials, or the emulator's
registry under DOKI_EMULATOR.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from doki_cli.errors import Code, DokiError
from doki_cli.gcp.errors import call_google, google_error
from doki_cli.gcp.operations import OperationTimeout, PollFailed, accepted, wait_for
from doki_cli.gcp.retry import Retrier, knowing_retries

if TYPE_CHECKING:
    from doki_cli.engine import DockerEngine
    from doki_cli.gcp.clients import RegistryLogin

IMAGE = re.compile(
    r"(?P<location>[a-z0-9-]+)-docker\.pkg\.dev/(?P<project>[^/]+)/(?P<repository>[^/]+)/(?P<image>[^:@]+)"
    r":(?P<tag>[\w][\w.-]{0,127})"
)
WRITER_ROLE = "roles/artifactregistry.writer"
CREATOR_ROLE = "roles/artifactregistry.admin"
# Creating a repository takes seconds.
CREATE_TIMEOUT = 300.0
POINT_AT_EMULATOR = 'eval "$(doki emulator env)"'
CHECK_CONFIG = "check project, region and repository in doki.toml; `doki build --push` creates the repository"
# Hints for the engine's push failures, as a pair (on Google, against the emulator): the fixes differ.
PUSH_HINTS = {
    Code.PUSH_DENIED: (
        f"grant your account {WRITER_ROLE} on the repository, or log in again: gcloud auth application-default login",
        f"the emulator's registry takes the user oauth2accesstoken with any token; {POINT_AT_EMULATOR} sets it up",
    ),
    Code.REGISTRY_UNREACHABLE: (
        "check that the Docker engine reaches {address} (network, proxy), then try again",
        f"check that the emulator runs (doki emulator status) and that this shell points at it: {POINT_AT_EMULATOR}",
    ),
    Code.REPOSITORY_NOT_FOUND: (CHECK_CONFIG, CHECK_CONFIG),
}


class ArtifactRegistry:
    def __init__(
        self,
        client: Any,
        project: str,
        region: str,
        retrier: Retrier,
        *,
        login: Callable[[str], RegistryLogin],
    ) -> None:
        self._client = client
        self.project = project
        self.region = region
        self._retrier = retrier
        self._make_login = login
        self._login: RegistryLogin | None = None

    def _repository_name(self, repository: str, location: str | None = None, project: str | None = None) -> str:
        return f"projects/{project or self.project}/locations/{location or self.region}/repositories/{repository}"

    def ensure_repository(self, repository: str) -> bool:
        """Create the Docker repository in Artifact Registry when it is missing; True if it was created."""
        from google.api_core import exceptions
        from google.cloud import artifactregistry_v1

        parent = f"projects/{self.project}/locations/{self.region}"
        name = self._repository_name(repository)
        try:
            self._retrier.call(lambda: self._client.get_repository(name=name))
            return False
        except exceptions.NotFound:
            pass
        except exceptions.GoogleAPICallError as exc:
            raise google_error(exc, action="reading", resource=name, api="artifactregistry") from None
        docker = artifactregistry_v1.Repository.Format.DOCKER

        def create(retried: bool) -> Any:
            try:
                return self._client.create_repository(
                    parent=parent, repository_id=repository, repository=artifactregistry_v1.Repository(format_=docker)
                )
            except exceptions.AlreadyExists:
                # Made meanwhile by someone else (just as good), or, on a retry, by the try before: its answer lost.
                return retried

        operation = call_google(
            self._retrier,
            knowing_retries(create),
            action="creating",
            resource=name,
            api="artifactregistry",
            role=CREATOR_ROLE,
        )
        if isinstance(operation, bool):
            return operation
        try:
            wait_for(operation, self._retrier, timeout=CREATE_TIMEOUT)
        except exceptions.AlreadyExists:
            return False  # created meanwhile by someone else: just as good
        except exceptions.GoogleAPICallError as exc:
            raise google_error(
                exc, action="creating", resource=name, api="artifactregistry", role=CREATOR_ROLE
            ) from None
        except PollFailed as failed:
            waiting = google_error(failed.cause, action="waiting for", resource=name, api="artifactregistry")
            raise accepted(waiting) from None
        except OperationTimeout:
            raise DokiError(
                Code.CREATE_TIMEOUT,
                f"{name} was not created after {CREATE_TIMEOUT:.0f} s",
                f"check again in a minute: gcloud artifacts repositories describe {repository} "
                f"--location {self.region} --project {self.project}",
            ) from None
        return True

    @staticmethod
    def is_tagged_reference(image: str) -> bool:
        """Whether `image` is written as a tag in Artifact Registry (REGION-docker.pkg.dev/PROJECT/REPO/IMAGE:TAG)."""
        return IMAGE.fullmatch(image) is not None

    def is_standard_repository(self, image: str) -> bool:
        """Whether the repository of `image` (a tagged reference) stores its images itself: a remote or virtual one
        lists only what it has cached or its upstreams, so a missing tag there proves nothing."""
        from google.api_core import exceptions
        from google.cloud import artifactregistry_v1

        match = IMAGE.fullmatch(image)
        assert match is not None
        name = self._repository_name(match["repository"], match["location"], match["project"])
        try:
            repository = self._retrier.call(lambda: self._client.get_repository(name=name))
        except exceptions.NotFound:
            return True  # no repository: no image either
        except exceptions.GoogleAPICallError as exc:
            raise google_error(exc, action="reading", resource=name, api="artifactregistry") from None
        standard = artifactregistry_v1.Repository.Mode.STANDARD_REPOSITORY
        return repository.mode in (standard, artifactregistry_v1.Repository.Mode.MODE_UNSPECIFIED)

    def digest_of(self, image: str) -> str | None:
        """The digest the tag of `image` (REGION-docker.pkg.dev/PROJECT/REPO/IMAGE:TAG) points at; None when the
        tag (or its repository) does not exist."""
        from google.api_core import exceptions

        match = IMAGE.fullmatch(image)
        if match is None:
            raise DokiError(
                Code.BAD_IMAGE,
                f"{image} is not an Artifact Registry image with a tag",
                "name it LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE:TAG",
            )
        parent = self._repository_name(match["repository"], match["location"], match["project"])
        path = image.rpartition(":")[0]

        def find() -> str | None:
            # Docker images carry their tags; listing is the one call that finds a tag on Google and the emulator.
            request = {"parent": parent, "page_size": 1000}
            for docker_image in self._client.list_docker_images(request=request):
                found, _, digest = docker_image.uri.rpartition("@")
                if found == path and match["tag"] in docker_image.tags:
                    return str(digest)
            return None

        try:
            return self._retrier.call(find)
        except exceptions.NotFound:
            return None
        except exceptions.GoogleAPICallError as exc:
            raise google_error(exc, action="listing the images of", resource=parent, api="artifactregistry") from None

    def login(self) -> RegistryLogin:
        """Where and as whom pushes go, decided on first use. Asking before a build fails fast on missing
        credentials; the access token lasts an hour, and a push follows its build within minutes."""
        if self._login is None:
            self._login = self._make_login(self.region)
        return self._login

    def push(self, engine: DockerEngine, tags: list[str], on_line: Callable[[str], None]) -> str:
        """Push the local image under each of `tags` (names in this region's Artifact Registry); its digest."""
        login = self.login()
        emulated = bool(login.prefix)  # only the emulator's names carry a prefix
        digest = ""
        for image in tags:
            reference = login.reference(image)
            if reference != image:
                # The emulator's name for the image (its address in front): the engine pushes to whatever host
                # the name starts with. The local tag stays, so the engine's RepoDigests show what was pushed.
                engine.tag(image, reference)
            try:
                digest = engine.push(reference, login.auth_config(), on_line)
            except DokiError as err:
                hints = PUSH_HINTS.get(err.code)
                if hints is None:
                    raise
                hint = hints[1] if emulated else hints[0].format(address=login.address)
                raise DokiError(err.code, err.message, hint) from None
        return digest
