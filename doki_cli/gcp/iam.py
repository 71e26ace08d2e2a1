"""IAM read-modify-write for the adapters whose resources carry policies (secrets, Cloud Run services).

The policy's etag guards the write: when someone else changed it since we read it, Google answers ABORTED and
the whole read-modify-write starts again, a bounded number of times.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from doki_cli.errors import Code, DokiError
from doki_cli.gcp.errors import call_google, google_error
from doki_cli.gcp.retry import Retrier
from doki_cli.interrupts import uninterrupted

POLICY_ATTEMPTS = 5


def set_member(policy: Any, role: str, member: str, *, present: bool) -> bool:
    """Put `member` in (or take it out of) `role`'s binding; True when the policy changed."""
    from google.iam.v1 import policy_pb2

    binding = next((b for b in policy.bindings if b.role == role), None)
    has = binding is not None and member in binding.members
    if has == present:
        return False
    if binding is None:
        policy.bindings.append(policy_pb2.Binding(role=role, members=[member]))
    elif present:
        binding.members.append(member)
    else:
        binding.members.remove(member)
    return True


def edit_policy(
    client: Any, resource: str, edit: Callable[[Any], bool], *, retrier: Retrier, api: str, admin_role: str
) -> bool:
    """Read the policy of `resource`, let `edit` change it (False: nothing to do), write it back; True if written."""
    from google.api_core import exceptions

    for _ in range(POLICY_ATTEMPTS):
        policy = call_google(
            retrier,
            partial(client.get_iam_policy, request={"resource": resource}),
            action="reading the IAM policy of",
            resource=resource,
            api=api,
            role=admin_role,
        )
        if not edit(policy):
            return False
        try:
            # The write finishes before a Ctrl-C takes effect, so the next run reads the policy it left.
            retrier.call(
                partial(uninterrupted, partial(client.set_iam_policy, request={"resource": resource, "policy": policy}))
            )
            return True
        except exceptions.Aborted:
            continue  # someone else changed the policy since we read it: read it again
        except exceptions.GoogleAPICallError as exc:
            raise google_error(
                exc, action="changing the IAM policy of", resource=resource, api=api, role=admin_role
            ) from None
    raise DokiError(
        Code.CONCURRENT_CHANGE,
        f"the IAM policy of {resource} kept changing while doki updated it ({POLICY_ATTEMPTS} attempts)",
        "run the command again once other changes have settled",
    )
