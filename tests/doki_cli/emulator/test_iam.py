"""IAM in the emulator: a policy reads back at once, its grants reach the services after the project's delay (and
rewriting a policy does not restart the clock of the grants it keeps); an organisation that restricts domains refuses
public principals."""

from __future__ import annotations

import grpc
import pytest
from google.iam.v1 import policy_pb2

from doki_cli.emulator.errors import ApiError
from doki_cli.emulator.iam import NOT_PERMITTED, OrgPolicy, Policies, Propagation

SECRET = "projects/slow/secrets/api-key"
ACCESSOR = "roles/secretmanager.secretAccessor"


def policy(*members: str) -> policy_pb2.Policy:
    return policy_pb2.Policy(bindings=[policy_pb2.Binding(role=ACCESSOR, members=list(members))])


def test_a_grant_is_in_effect_only_once_its_projects_delay_has_passed() -> None:
    now = [0.0]
    propagation = Propagation(clock=lambda: now[0])
    propagation.set("slow", 30)
    policies = Policies(propagation=propagation)

    policies.set_policy(SECRET, policy("serviceAccount:a@slow.iam.gserviceaccount.com"))
    assert policies.members(SECRET, ACCESSOR) == {"serviceAccount:a@slow.iam.gserviceaccount.com"}  # reads back
    assert policies.members_in_effect(SECRET, ACCESSOR) == set()

    now[0] = 20
    both = policy("serviceAccount:a@slow.iam.gserviceaccount.com", "serviceAccount:b@slow.iam.gserviceaccount.com")
    policies.set_policy(SECRET, both)
    now[0] = 30
    assert policies.members_in_effect(SECRET, ACCESSOR) == {"serviceAccount:a@slow.iam.gserviceaccount.com"}
    now[0] = 50
    assert len(policies.members_in_effect(SECRET, ACCESSOR)) == 2

    other = "projects/fast/secrets/k"
    policies.set_policy(other, policy("serviceAccount:c@fast.iam.gserviceaccount.com"))
    assert policies.members_in_effect(other, ACCESSOR) == {"serviceAccount:c@fast.iam.gserviceaccount.com"}


def test_domain_restricted_sharing_refuses_public_principals_as_google_does_and_only_where_it_is_on() -> None:
    org = OrgPolicy()
    policies = Policies(org=org)
    service = "projects/corp/locations/us-central1/services/api"
    public = policy_pb2.Policy(bindings=[policy_pb2.Binding(role="roles/run.invoker", members=["allUsers"])])
    policies.set_policy(service, public)  # not restricted: a project outside any organisation

    org.restrict_domains("corp", True)
    for member in ("allUsers", "allAuthenticatedUsers"):
        binding = policy_pb2.Binding(role="roles/run.invoker", members=[member])
        with pytest.raises(ApiError) as refused:
            policies.set_policy(service, policy_pb2.Policy(bindings=[binding]))
        assert (refused.value.code, refused.value.message) == (grpc.StatusCode.FAILED_PRECONDITION, NOT_PERMITTED)
    own = policy_pb2.Binding(role="roles/run.invoker", members=["serviceAccount:a@corp.iam.gserviceaccount.com"])
    policies.set_policy(service, policy_pb2.Policy(bindings=[own]))  # the organisation's own principals pass
    policies.set_policy("projects/other/secrets/s", public)  # other projects are not affected


def test_a_resource_made_again_under_its_name_waits_for_its_new_grants_again() -> None:
    now = [0.0]
    propagation = Propagation(clock=lambda: now[0])
    propagation.set("slow", 30)
    policies = Policies(propagation=propagation)
    policies.set_policy(SECRET, policy("serviceAccount:a@slow.iam.gserviceaccount.com"))
    now[0] = 100
    policies.forget(SECRET)  # the secret deleted, then made again and granted again
    policies.set_policy(SECRET, policy("serviceAccount:a@slow.iam.gserviceaccount.com"))
    assert policies.members_in_effect(SECRET, ACCESSOR) == set()
