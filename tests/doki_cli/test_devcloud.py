"""The deployed service's environment for `doki dev --from-service` (doki_cli/devcloud.py), on doubles of Cloud Run
and Secret Manager: each secret read at the version the service pins, another project's by its full name, what Cloud
Run sets itself left out, and the developer's own environment winning."""

from __future__ import annotations

from dataclasses import replace

import pytest

from doki_cli import devcloud
from doki_cli.errors import DokiError
from doki_cli.model import LiveService, ServiceSpec, Target

SPEC = ServiceSpec("img:1", 8080, "512Mi", "1", 80, 300, 0, 10, "all", None)
LIVE = LiveService("api", SPEC, "https://api", "e", 1, None, (), (), {}, "api-00002-abc", None, True, "")


class Run:
    def __init__(self, live: LiveService | None) -> None:
        self.live = live

    def get(self, name: str) -> LiveService | None:
        return self.live

    def path(self, name: str) -> str:
        return f"projects/p/locations/us-central1/services/{name}"


class Secrets:
    def __init__(self, values: dict[tuple[str, str], bytes]) -> None:
        self.values = values
        self.read: list[tuple[str, str]] = []

    def access(self, secret_id: str, version: str = "latest") -> bytes:
        self.read.append((secret_id, version))
        return self.values[(secret_id, version)]


def test_each_secret_is_read_at_the_version_the_service_pins_another_projects_by_its_full_name() -> None:
    spec = replace(SPEC, env={"A": "1", "K_SERVICE": "api"}, secrets={"KEY": "key:3", "SHARED": "shared:1"})
    live = replace(LIVE, spec=spec, foreign_secrets={"SHARED": "projects/other/secrets/shared"})
    secrets = Secrets({("key", "3"): b"k3", ("projects/other/secrets/shared", "1"): b"s1"})

    cloud = devcloud.read(Run(live), secrets, "api")

    assert secrets.read == [("key", "3"), ("projects/other/secrets/shared", "1")]
    # K_SERVICE is Cloud Run's to set: not taken.
    assert cloud.values == {"A": "1", "KEY": "k3", "SHARED": "s1"}
    assert (cloud.plain, cloud.sources) == (["A"], {"KEY": "key:3", "SHARED": "projects/other/secrets/shared:1"})
    assert "k3" not in repr(cloud)


def test_a_secret_that_is_not_text_is_refused_naming_it() -> None:
    live = replace(LIVE, spec=replace(SPEC, secrets={"KEY": "key:2"}))

    with pytest.raises(DokiError) as refused:
        devcloud.read(Run(live), Secrets({("key", "2"): b"\xff\xfe"}), "api")

    assert refused.value.message == "secret key version 2 is not text, so KEY cannot hold it here"


def test_the_developers_environment_wins_and_is_named() -> None:
    cloud = devcloud.CloudEnvironment("s", None, "u", {"A": "cloud", "B": "cloud"})
    environ = {"A": "mine"}

    kept = devcloud.apply(cloud, environ)

    assert (kept, environ) == (["A"], {"A": "mine", "B": "cloud"})


def test_traffic_pinned_away_from_the_newest_revision_is_said_as_the_configuration_may_not_be_what_serves() -> None:
    pinned = replace(LIVE, latest_created="api-00002-abc", traffic=(Target("api-00001-xyz", 100),))

    cloud = devcloud.read(Run(pinned), Secrets({}), "api")

    assert cloud.revision == "api-00002-abc"
    assert cloud.warnings == [
        "traffic is pinned (100% api-00001-xyz): what serves may run an older configuration than this, the newest "
        "revision's"
    ]


def test_a_clean_name_in_the_environment_over_the_services_guide_spelling_is_named_as_kept() -> None:
    # The deployment guide's services hold the value under SESSION_SECRET_KEY_NAME; the backend prefers the clean one.
    cloud = devcloud.CloudEnvironment("s", None, "u", {"SESSION_SECRET_KEY_NAME": "cloud"})
    environ = {"SESSION_SECRET_KEY": "mine"}

    kept = devcloud.apply(cloud, environ, aliases=devcloud.backend_aliases())

    assert kept == ["SESSION_SECRET_KEY"]
    assert ["SESSION_SECRET_KEY", "SESSION_SECRET_KEY_NAME"] in devcloud.backend_aliases()
