"""IAM propagation in the emulator: a policy reads back at once, its grants reach the services after the project's
delay, and rewriting a policy does not restart the clock of the grants it keeps."""

from __future__ import annotations

from google.iam.v1 import policy_pb2

from doki_cli.emulator.iam import Policies, Propagation

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
