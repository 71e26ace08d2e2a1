"""Secret Manager over gRPC, driven by the official client exactly as doki and Cloud Run users drive it."""

from __future__ import annotations

from typing import Any

import google_crc32c
import pytest
from google.api_core import exceptions
from google.cloud import secretmanager
from google.iam.v1 import policy_pb2

from doki_cli.emulator.errors import ApiError
from doki_cli.emulator.projects import compute_default_account
from doki_cli.emulator.server import Emulator
from tests.doki_cli.emulator.secretmanager.support import PROJECT, make_secret

# An account that exists in every project (IAM policies name only accounts that exist).
P_DEFAULT_ACCOUNT = f"serviceAccount:{compute_default_account('p')}"

State = secretmanager.SecretVersion.State


def test_versions_are_numbered_from_one_per_secret(sm: Any) -> None:
    first = make_secret(sm, "first")
    second = make_secret(sm, "second")
    names = [sm.add_secret_version(parent=first, payload={"data": b"a"}).name for _ in range(2)]
    names.append(sm.add_secret_version(parent=second, payload={"data": b"b"}).name)
    assert names == [f"{first}/versions/1", f"{first}/versions/2", f"{second}/versions/1"]


def test_a_created_secret_reads_back_with_its_fields_a_create_time_and_a_quoted_etag(sm: Any) -> None:
    created = sm.create_secret(
        parent=PROJECT,
        secret_id="api-key",
        secret={"replication": {"automatic": {}}, "labels": {"env": "prod"}, "annotations": {"owner": "ops"}},
    )
    read = sm.get_secret(name="projects/p/secrets/api-key")
    assert read == created
    assert (read.name, dict(read.labels), dict(read.annotations)) == (
        "projects/p/secrets/api-key",
        {"env": "prod"},
        {"owner": "ops"},
    )
    assert "automatic" in read.replication
    assert read.create_time.timestamp() > 0
    assert read.etag.startswith('"') and read.etag.endswith('"') and len(read.etag) > 2


def test_latest_is_the_newest_version_and_access_names_the_version_it_resolved(sm: Any) -> None:
    name = make_secret(sm, "token", b"one", b"two")
    answer = sm.access_secret_version(name=f"{name}/versions/latest")
    assert (answer.name, answer.payload.data) == (f"{name}/versions/2", b"two")


def test_access_by_number_returns_that_versions_payload_and_its_crc32c(sm: Any) -> None:
    name = make_secret(sm, "token", b"one", b"two")
    answer = sm.access_secret_version(name=f"{name}/versions/1")
    assert answer.payload.data == b"one"
    assert answer.payload.data_crc32c == google_crc32c.value(b"one")


def test_a_version_can_be_read_back_by_a_version_alias(sm: Any) -> None:
    name = make_secret(sm, "token", b"one", b"two")
    secret = sm.get_secret(name=name)
    secret.version_aliases["stable"] = 1
    sm.update_secret(secret=secret, update_mask={"paths": ["version_aliases"]})
    assert sm.access_secret_version(name=f"{name}/versions/stable").payload.data == b"one"


def test_a_disabled_version_cannot_be_accessed_until_it_is_enabled_again(sm: Any) -> None:
    name = make_secret(sm, "token", b"one")
    disabled = sm.disable_secret_version(name=f"{name}/versions/1")
    assert disabled.state == State.DISABLED
    with pytest.raises(exceptions.FailedPrecondition) as caught:
        sm.access_secret_version(name=f"{name}/versions/latest")
    assert caught.value.message == f"Secret Version [{name}/versions/1] is in DISABLED state."
    assert sm.enable_secret_version(name=f"{name}/versions/1").state == State.ENABLED
    assert sm.access_secret_version(name=f"{name}/versions/1").payload.data == b"one"


def test_a_destroyed_version_loses_its_data_for_good_but_stays_listed(sm: Any) -> None:
    name = make_secret(sm, "token", b"one", b"two")
    destroyed = sm.destroy_secret_version(name=f"{name}/versions/1")
    assert destroyed.state == State.DESTROYED
    assert destroyed.destroy_time.timestamp() > 0
    with pytest.raises(exceptions.FailedPrecondition, match=r"versions/1\] is in DESTROYED state"):
        sm.access_secret_version(name=f"{name}/versions/1")
    with pytest.raises(exceptions.FailedPrecondition, match=r"versions/1\] is in DESTROYED state"):
        sm.enable_secret_version(name=f"{name}/versions/1")
    assert [v.state for v in sm.list_secret_versions(parent=name)] == [State.ENABLED, State.DESTROYED]
    assert sm.access_secret_version(name=f"{name}/versions/2").payload.data == b"two"


def test_a_state_change_with_a_stale_version_etag_fails_its_precondition(sm: Any) -> None:
    name = make_secret(sm, "token", b"one")
    version = sm.get_secret_version(name=f"{name}/versions/1")
    # Enabling an enabled version changes nothing but its etag, so the etag read before is now stale.
    sm.enable_secret_version(name=version.name)
    with pytest.raises(exceptions.FailedPrecondition, match="etag"):
        sm.disable_secret_version(request={"name": version.name, "etag": version.etag})
    current = sm.get_secret_version(name=version.name)
    assert sm.disable_secret_version(request={"name": version.name, "etag": current.etag}).state == State.DISABLED


def test_listing_secrets_pages_through_every_secret_in_name_order(sm: Any) -> None:
    for secret_id in ("c", "a", "e", "b", "d"):
        make_secret(sm, secret_id)
    first = sm.list_secrets(request={"parent": PROJECT, "page_size": 2})
    assert [s.name for s in first.secrets] == ["projects/p/secrets/a", "projects/p/secrets/b"]
    assert first.total_size == 5
    assert first.next_page_token
    everything = sm.list_secrets(request={"parent": PROJECT, "page_size": 2})
    assert [s.name.rsplit("/", 1)[1] for s in everything] == ["a", "b", "c", "d", "e"]


def test_listing_secrets_keeps_to_the_project(sm: Any) -> None:
    make_secret(sm, "mine")
    sm.create_secret(parent="projects/other", secret_id="theirs", secret={"replication": {"automatic": {}}})
    assert [s.name for s in sm.list_secrets(parent=PROJECT)] == ["projects/p/secrets/mine"]


def test_list_filters_select_by_name_and_label(sm: Any) -> None:
    make_secret(sm, "db-password", labels={"env": "prod"})
    make_secret(sm, "db-user", labels={"env": "dev"})
    make_secret(sm, "api-key", labels={"env": "prod"})

    def ids(expression: str) -> list[str]:
        found = sm.list_secrets(request={"parent": PROJECT, "filter": expression})
        return [s.name.rsplit("/", 1)[1] for s in found]

    assert ids("name:db-") == ["db-password", "db-user"]
    assert ids("labels.env=prod") == ["api-key", "db-password"]
    assert ids("name:db labels.env=prod") == ["db-password"]
    assert ids("labels.team:*") == []
    with pytest.raises(exceptions.InvalidArgument, match=r"cannot filter on \[create_time\]"):
        ids("create_time:2020")
    with pytest.raises(exceptions.InvalidArgument, match=r"Invalid filter \[name>a\]"):
        ids("name>a")


def test_listing_versions_lists_newest_first_and_filters_by_state(sm: Any) -> None:
    name = make_secret(sm, "token", b"1", b"2", b"3")
    sm.disable_secret_version(name=f"{name}/versions/2")
    assert [v.name.rsplit("/", 1)[1] for v in sm.list_secret_versions(parent=name)] == ["3", "2", "1"]
    enabled = sm.list_secret_versions(request={"parent": name, "filter": "state:ENABLED"})
    assert [v.name.rsplit("/", 1)[1] for v in enabled] == ["3", "1"]


def test_creating_a_secret_twice_raises_already_exists_which_is_a_conflict(sm: Any) -> None:
    make_secret(sm, "token")
    with pytest.raises(exceptions.AlreadyExists) as caught:
        make_secret(sm, "token")
    assert isinstance(caught.value, exceptions.Conflict)
    assert caught.value.message == "Secret [projects/p/secrets/token] already exists."


def test_missing_secrets_and_versions_are_not_found_with_googles_messages(sm: Any) -> None:
    with pytest.raises(exceptions.NotFound) as secret:
        sm.get_secret(name="projects/p/secrets/nope")
    assert secret.value.message == "Secret [projects/p/secrets/nope] not found."
    with pytest.raises(exceptions.NotFound) as latest:
        sm.access_secret_version(name="projects/p/secrets/nope/versions/latest")
    assert latest.value.message == "Secret [projects/p/secrets/nope] not found or has no versions."
    name = make_secret(sm, "empty")
    with pytest.raises(exceptions.NotFound) as no_versions:
        sm.access_secret_version(name=f"{name}/versions/latest")
    assert no_versions.value.message == f"Secret [{name}] not found or has no versions."
    with pytest.raises(exceptions.NotFound) as version:
        sm.get_secret_version(name=f"{name}/versions/7")
    assert version.value.message == f"Secret Version [{name}/versions/7] not found."


@pytest.mark.parametrize(
    ("secret_id", "secret", "message"),
    [
        ("no replication", {"replication": {"automatic": {}}}, "does not match the expected format"),
        ("x" * 256, {"replication": {"automatic": {}}}, "does not match the expected format"),
        ("ok", {}, "Secret.replication is required"),
        ("ok", {"replication": {"user_managed": {}}}, "must name at least one location"),
    ],
)
def test_a_bad_secret_is_refused_as_an_invalid_argument(
    sm: Any, secret_id: str, secret: dict[str, Any], message: str
) -> None:
    with pytest.raises(exceptions.InvalidArgument, match=message):
        sm.create_secret(parent=PROJECT, secret_id=secret_id, secret=secret)


def test_user_managed_replication_shows_in_each_versions_replication_status(sm: Any) -> None:
    secret = sm.create_secret(
        parent=PROJECT,
        secret_id="regional",
        secret={"replication": {"user_managed": {"replicas": [{"location": "europe-west1"}]}}},
    )
    version = sm.add_secret_version(parent=secret.name, payload={"data": b"x"})
    assert [r.location for r in version.replication_status.user_managed.replicas] == ["europe-west1"]


def test_a_payload_checksum_is_verified_and_remembered(sm: Any) -> None:
    name = make_secret(sm, "token")
    with pytest.raises(exceptions.InvalidArgument, match="Checksum mismatch"):
        sm.add_secret_version(parent=name, payload={"data": b"value", "data_crc32c": 1234})
    version = sm.add_secret_version(
        parent=name, payload={"data": b"value", "data_crc32c": google_crc32c.value(b"value")}
    )
    assert version.name == f"{name}/versions/1"
    assert version.client_specified_payload_checksum is True


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "Secret Payload cannot be empty."), (b"x" * 65537, "Secret Payload cannot be larger than 65536 bytes.")],
)
def test_an_empty_or_oversized_payload_is_refused(sm: Any, data: bytes, message: str) -> None:
    name = make_secret(sm, "token")
    with pytest.raises(exceptions.InvalidArgument) as caught:
        sm.add_secret_version(parent=name, payload={"data": data})
    assert caught.value.message == message
    assert sm.add_secret_version(parent=name, payload={"data": b"x" * 65536}).name == f"{name}/versions/1"


def test_an_update_changes_only_the_masked_fields_and_the_etag(sm: Any) -> None:
    name = make_secret(sm, "token", labels={"env": "dev"}, annotations={"a": "1"})
    before = sm.get_secret(name=name)
    change = secretmanager.Secret(name=name, labels={"env": "prod"}, annotations={"ignored": "yes"})
    after = sm.update_secret(secret=change, update_mask={"paths": ["labels"]})
    assert (dict(after.labels), dict(after.annotations)) == ({"env": "prod"}, {"a": "1"})
    assert after.etag != before.etag
    assert sm.get_secret(name=name) == after


def test_an_update_with_a_stale_etag_fails_its_precondition(sm: Any) -> None:
    name = make_secret(sm, "token")
    stale = sm.get_secret(name=name)
    sm.update_secret(secret={"name": name, "labels": {"a": "b"}}, update_mask={"paths": ["labels"]})
    stale.labels["c"] = "d"
    with pytest.raises(exceptions.FailedPrecondition) as caught:
        sm.update_secret(secret=stale, update_mask={"paths": ["labels"]})
    assert caught.value.message == f"The etag provided does not match the current etag of [{name}]."


def test_an_update_of_an_immutable_field_is_refused(sm: Any) -> None:
    name = make_secret(sm, "token")
    with pytest.raises(exceptions.InvalidArgument, match=r"The field \[replication\] cannot be updated"):
        sm.update_secret(secret={"name": name}, update_mask={"paths": ["replication"]})


def test_delete_checks_the_etag_when_given_and_removes_every_version(sm: Any) -> None:
    name = make_secret(sm, "token", b"one")
    with pytest.raises(exceptions.FailedPrecondition):
        sm.delete_secret(request={"name": name, "etag": '"stale"'})
    sm.delete_secret(request={"name": name, "etag": sm.get_secret(name=name).etag})
    with pytest.raises(exceptions.NotFound):
        sm.access_secret_version(name=f"{name}/versions/1")
    # A secret made again under the same id starts over from version 1, with a fresh policy.
    make_secret(sm, "token", b"again")
    assert sm.access_secret_version(name=f"{name}/versions/latest").name == f"{name}/versions/1"


def _grant(sm: Any, name: str, member: str, role: str = "roles/secretmanager.secretAccessor") -> Any:
    policy = sm.get_iam_policy(request={"resource": name})
    policy.bindings.append(policy_pb2.Binding(role=role, members=[member]))
    return sm.set_iam_policy(request={"resource": name, "policy": policy})


def test_a_binding_lets_exactly_that_member_access_the_secret(sm: Any, emulator: Emulator) -> None:
    name = make_secret(sm, "token", b"one")
    runtime = P_DEFAULT_ACCOUNT
    assert emulator.secrets.can_access(name, runtime) is False
    policy = _grant(sm, name, runtime)
    assert [(b.role, list(b.members)) for b in policy.bindings] == [("roles/secretmanager.secretAccessor", [runtime])]
    assert emulator.secrets.can_access(name, runtime) is True
    assert emulator.secrets.can_access(name, "serviceAccount:other@p.iam.gserviceaccount.com") is False
    assert emulator.secrets.can_access("projects/p/secrets/nope", runtime) is False


@pytest.mark.parametrize(
    ("member", "role"),
    [
        ("allUsers", "roles/secretmanager.secretAccessor"),
        (P_DEFAULT_ACCOUNT, "roles/owner"),
    ],
)
def test_access_is_granted_through_all_users_or_a_role_that_contains_access(
    sm: Any, emulator: Emulator, member: str, role: str
) -> None:
    name = make_secret(sm, "token")
    _grant(sm, name, member, role)
    assert emulator.secrets.can_access(name, P_DEFAULT_ACCOUNT) is True


def test_a_viewer_binding_does_not_grant_access(sm: Any, emulator: Emulator) -> None:
    name = make_secret(sm, "token")
    _grant(sm, name, P_DEFAULT_ACCOUNT, "roles/secretmanager.viewer")
    assert emulator.secrets.can_access(name, P_DEFAULT_ACCOUNT) is False


def test_a_policy_write_with_a_stale_etag_is_aborted(sm: Any) -> None:
    name = make_secret(sm, "token")
    stale = sm.get_iam_policy(request={"resource": name})
    _grant(sm, name, "user:a@example.com")
    stale.bindings.append(policy_pb2.Binding(role="roles/secretmanager.admin", members=["user:b@example.com"]))
    with pytest.raises(exceptions.Aborted, match="concurrent policy changes"):
        sm.set_iam_policy(request={"resource": name, "policy": stale})


def test_iam_methods_on_a_missing_secret_are_not_found(sm: Any) -> None:
    with pytest.raises(exceptions.NotFound, match=r"Secret \[projects/p/secrets/nope\] not found."):
        sm.get_iam_policy(request={"resource": "projects/p/secrets/nope"})


def test_test_iam_permissions_grants_what_is_asked(sm: Any) -> None:
    name = make_secret(sm, "token")
    answer = sm.test_iam_permissions(request={"resource": name, "permissions": ["secretmanager.versions.access"]})
    assert list(answer.permissions) == ["secretmanager.versions.access"]


def test_touching_a_secret_makes_both_its_etag_and_its_policy_etag_stale(sm: Any, emulator: Emulator) -> None:
    name = make_secret(sm, "token")
    secret = sm.get_secret(name=name)
    policy = sm.get_iam_policy(request={"resource": name})
    assert emulator.touch(name) is True
    with pytest.raises(exceptions.FailedPrecondition):
        sm.update_secret(secret=secret, update_mask={"paths": ["labels"]})
    with pytest.raises(exceptions.Aborted):
        sm.set_iam_policy(request={"resource": name, "policy": policy})
    assert emulator.secrets.touch("projects/p/secrets/nope") is False


def test_resolve_reads_what_cloud_run_injects_and_fails_like_access(sm: Any, emulator: Emulator) -> None:
    name = make_secret(sm, "token", b"one", b"two")
    assert emulator.secrets.resolve(f"{name}/versions/latest") == b"two"
    assert emulator.secrets.resolve(f"{name}/versions/1") == b"one"
    assert emulator.secrets.exists(name) is True
    assert emulator.secrets.exists("projects/p/secrets/nope") is False
    sm.disable_secret_version(name=f"{name}/versions/2")
    with pytest.raises(ApiError) as disabled:
        emulator.secrets.resolve(f"{name}/versions/latest")
    assert (disabled.value.status_name, disabled.value.message) == (
        "FAILED_PRECONDITION",
        f"Secret Version [{name}/versions/2] is in DISABLED state.",
    )
    with pytest.raises(ApiError) as missing:
        emulator.secrets.resolve("projects/p/secrets/nope/versions/latest")
    assert missing.value.status_name == "NOT_FOUND"


def test_a_malformed_version_name_is_an_invalid_argument(sm: Any) -> None:
    with pytest.raises(exceptions.InvalidArgument, match=r"does not match the expected format"):
        sm.access_secret_version(name="projects/p/secrets/token")
