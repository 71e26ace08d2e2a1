"""IAM policies on emulated resources: read-modify-write guarded by an etag, as every Google API does it."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from google.iam.v1 import iam_policy_pb2, policy_pb2

from doki_cli.emulator import protojson
from doki_cli.emulator.errors import aborted, failed_precondition, invalid_argument
from doki_cli.emulator.grpcapi import GrpcService
from doki_cli.emulator.iamadmin.state import ServiceAccounts

STALE_ETAG = "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff."
_PROJECT = re.compile(r"projects/([^/]+)")


class Propagation:
    """How long a grant takes to take effect, per project.

    A policy reads back at once, but what it allows reaches the services later: "typically within 2 minutes", in
    some cases 7 or more (https://cloud.google.com/iam/docs/access-change-propagation). A revision made right after
    its secrets were granted can fail "Permission denied on secret" once. The delay varies from call to call, so the
    emulator's default is none; a test that rehearses it sets a project's delay through the control API."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._seconds: dict[str, float] = {}

    def set(self, project: str, seconds: float) -> None:
        self._seconds[project] = seconds

    def seconds(self, project: str) -> float:
        return self._seconds.get(project, 0.0)


# What Google answers a policy naming a principal the organisation does not permit (HTTP 400, FAILED_PRECONDITION), as
# users meet it: GoogleCloudPlatform/genai-for-marketing#153 (a Cloud Run invoker binding), taers232c/GAMADV-XTD3#289.
NOT_PERMITTED = (
    "One or more users named in the policy do not belong to a permitted customer,  perhaps due to an organization "
    "policy."
)
_PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")


class OrgPolicy:
    """The organisation policies that decide which principals a project's IAM policies may name.

    Domain restricted sharing (the `iam.allowedPolicyMemberDomains` constraint) lets policies name only identities of
    the organisation's own domains, so `allUsers` and `allAuthenticatedUsers` are refused
    (https://cloud.google.com/resource-manager/docs/organization-policy/restricting-domains). Organisations made since
    May 2024 enforce it by default; a project outside any organisation (a personal account's) does not, which is the
    emulator's default: a test turns it on per project through the control API."""

    def __init__(self) -> None:
        self._restricted: set[str] = set()

    def restrict_domains(self, project: str, on: bool) -> None:
        (self._restricted.add if on else self._restricted.discard)(project)

    def domains_restricted(self, project: str) -> bool:
        return project in self._restricted

    def admit(self, resource: str, policy: policy_pb2.Policy) -> None:
        """Refuse `policy` for `resource` as Google does when the resource's project restricts its domains."""
        match = _PROJECT.match(resource)
        if match is None or match.group(1) not in self._restricted:
            return
        if any(member in _PUBLIC_MEMBERS for binding in policy.bindings for member in binding.members):
            raise failed_precondition(NOT_PERMITTED)


class Policies:
    """Policies keyed by resource name; every write gets a new etag. With a `propagation`, each grant is in effect
    only once its project's delay has passed since it was made (the policy itself reads back at once); with an
    `org`, a policy its organisation does not permit is refused; with `accounts`, so is a policy naming a service
    account that does not exist."""

    def __init__(
        self,
        on_change: Callable[[], None] = lambda: None,
        propagation: Propagation | None = None,
        org: OrgPolicy | None = None,
        accounts: ServiceAccounts | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._policies: dict[str, policy_pb2.Policy] = {}
        self._on_change = on_change
        self._propagation = propagation
        self._org = org
        self._accounts = accounts
        self._granted: dict[str, dict[tuple[str, str], float]] = {}  # resource -> (role, member) -> when

    def get_policy(self, resource: str) -> policy_pb2.Policy:
        with self._lock:
            policy = self._policies.get(resource)
            if policy is None:
                # A resource without a policy still answers with an etag, so the first write can be guarded too.
                policy = policy_pb2.Policy(version=1, etag=os.urandom(8))
                self._policies[resource] = policy
            result = policy_pb2.Policy()
            result.CopyFrom(policy)
            return result

    def set_policy(self, resource: str, policy: policy_pb2.Policy) -> policy_pb2.Policy:
        for binding in policy.bindings:
            if not binding.role.startswith("roles/"):
                raise invalid_argument(f"Role {binding.role} is not a valid role: roles start with 'roles/'.")
            for member in binding.members:
                if member not in _PUBLIC_MEMBERS and ":" not in member:
                    raise invalid_argument(f"Invalid member '{member}': use a prefix such as serviceAccount:, user:.")
                if self._accounts is not None and member.startswith("serviceAccount:"):
                    # INVALID_ARGUMENT, as users meet it on secrets (googleapis/google-cloud-go#11482) and projects
                    # (GoogleCloudPlatform/generative-ai#944). A deleted account's binding reads back as
                    # `deleted:serviceAccount:…?uid=…`, which this prefix does not match.
                    self._accounts.require(
                        member.removeprefix("serviceAccount:"),
                        lambda email: invalid_argument(f"Service account {email} does not exist."),
                    )
        if self._org is not None:
            self._org.admit(resource, policy)
        with self._lock:
            current = self._policies.get(resource)
            if policy.etag and current is not None and policy.etag != current.etag:
                raise aborted(STALE_ETAG)
            stored = policy_pb2.Policy()
            stored.CopyFrom(policy)
            stored.version = stored.version or 1
            stored.etag = os.urandom(8)
            self._policies[resource] = stored
            if self._propagation is not None:
                now = self._propagation.clock()
                before = self._granted.get(resource, {})
                pairs = {(b.role, m) for b in stored.bindings for m in b.members}
                self._granted[resource] = {pair: before.get(pair, now) for pair in pairs}
            result = policy_pb2.Policy()
            result.CopyFrom(stored)
        self._on_change()
        return result

    def members(self, resource: str, role: str) -> set[str]:
        with self._lock:
            policy = self._policies.get(resource)
            if policy is None:
                return set()
            return {m for b in policy.bindings if b.role == role for m in b.members}

    def members_in_effect(self, resource: str, role: str) -> set[str]:
        """The members of `role` whose grant has reached the services (all of them without a propagation delay)."""
        members = self.members(resource, role)
        if self._propagation is None or not (match := _PROJECT.match(resource)):
            return members
        settled = self._propagation.clock() - self._propagation.seconds(match.group(1))
        with self._lock:
            granted = self._granted.get(resource, {})
            # A grant restored from a saved state (no time known) counts as old.
            return {m for m in members if granted.get((role, m), float("-inf")) <= settled}

    def touch(self, resource: str) -> None:
        """A change behind the client's back: same bindings, new etag (for conflict tests)."""
        self.set_policy(resource, self.get_policy(resource))

    def forget(self, resource: str) -> None:
        with self._lock:
            self._policies.pop(resource, None)
            self._granted.pop(resource, None)  # a resource made again under the name starts without grants
        self._on_change()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {name: protojson.to_dict(policy) for name, policy in self._policies.items()}

    def restore(self, data: dict[str, Any]) -> None:
        with self._lock:
            self._policies = {name: protojson.from_dict(policy_pb2.Policy, d) for name, d in data.items()}


def add_iam_methods(api: GrpcService, policies: Policies, check_exists: Callable[[str], None]) -> None:
    """Get/Set/TestIamPermissions on `api`, for resources that `check_exists` accepts (it raises NOT_FOUND)."""

    def get_policy(request: iam_policy_pb2.GetIamPolicyRequest) -> policy_pb2.Policy:
        check_exists(request.resource)
        return policies.get_policy(request.resource)

    def set_policy(request: iam_policy_pb2.SetIamPolicyRequest) -> policy_pb2.Policy:
        check_exists(request.resource)
        return policies.set_policy(request.resource, request.policy)

    def test_permissions(
        request: iam_policy_pb2.TestIamPermissionsRequest,
    ) -> iam_policy_pb2.TestIamPermissionsResponse:
        check_exists(request.resource)
        # The emulator has no caller identity: every permission asked about is granted.
        return iam_policy_pb2.TestIamPermissionsResponse(permissions=list(request.permissions))

    api.unary("GetIamPolicy", iam_policy_pb2.GetIamPolicyRequest, policy_pb2.Policy, get_policy)
    api.unary("SetIamPolicy", iam_policy_pb2.SetIamPolicyRequest, policy_pb2.Policy, set_policy)
    api.unary(
        "TestIamPermissions",
        iam_policy_pb2.TestIamPermissionsRequest,
        iam_policy_pb2.TestIamPermissionsResponse,
        test_permissions,
    )
