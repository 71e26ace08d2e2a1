"""Google API errors as DokiErrors: what failed, on which resource, and the fix."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from doki_cli.errors import Code, DokiError

if TYPE_CHECKING:
    from doki_cli.gcp.retry import Retrier

# The API each service name belongs to, for "enable the API" hints.
API_NAMES = {
    "secretmanager": "secretmanager.googleapis.com",
    "run": "run.googleapis.com",
    "logging": "logging.googleapis.com",
    "cloudbuild": "cloudbuild.googleapis.com",
    "artifactregistry": "artifactregistry.googleapis.com",
    "serviceusage": "serviceusage.googleapis.com",
    "iam": "iam.googleapis.com",
    "iamcredentials": "iamcredentials.googleapis.com",
    "monitoring": "monitoring.googleapis.com",
    "billing": "cloudbilling.googleapis.com",
}
# Cloud Run's answer to a revision identity the caller may not use, or that does not exist (it cannot tell which):
# "Permission 'iam.serviceaccounts.actAs' denied on service account EMAIL (or it may not exist)."
_ACT_AS = re.compile(
    r"iam\.serviceaccounts\.actAs' denied on service account (?P<email>\S+@\S+?\.gserviceaccount\.com)", re.IGNORECASE
)
# What an IAM policy naming an account that does not exist gets: "Service account EMAIL does not exist."
_NO_ACCOUNT = re.compile(r"Service account (?P<email>\S+@\S+?) does not exist")
# What IAM Credentials answers for one: "Not found; Gaia id not found for email EMAIL".
_NO_GAIA_ID = re.compile(r"Gaia id not found for email (?P<email>\S+@\S+?\.gserviceaccount\.com)")


def call_google(
    retrier: Retrier,
    fn: Callable[[], Any],
    *,
    action: str,
    resource: str,
    api: str,
    role: str | None = None,
    retry_if: Callable[[BaseException], bool] | None = None,
) -> Any:
    """`fn()` with the retry policy (`retry_if`: what else an API answers that is worth another try); a Google error
    that remains becomes the DokiError that says the fix."""
    from google.api_core import exceptions

    try:
        return retrier.call(fn) if retry_if is None else retrier.call(fn, retry_if=retry_if)
    except exceptions.GoogleAPICallError as exc:
        raise google_error(exc, action=action, resource=resource, api=api, role=role) from None


# How an expired or revoked login shows, wherever it surfaces: google-auth's RefreshError for a reauthentication
# (google/oauth2/reauth.py), the token endpoint's invalid_grant, and inside gRPC's auth plugin, whose failure arrives
# as UNAVAILABLE "Getting metadata from plugin failed with error: …" (so it must not be retried as an outage).
_EXPIRED_LOGIN = ("Reauthentication is needed", "invalid_grant", "invalid_rapt", "Token has been expired or revoked")


def is_expired_login(exc: BaseException) -> bool:
    """Whether `exc` says the saved login must be renewed: no retry brings it back. Not a JWT refused for its times
    ("Check your iat and exp values": the machine's clock is off), which signing in again would not fix."""
    text = str(exc)
    return any(sign in text for sign in _EXPIRED_LOGIN) and "iat and exp" not in text


def expired_login(exc: BaseException, doing: str) -> DokiError:
    return DokiError(
        Code.CREDENTIALS_EXPIRED,
        f"{doing}: Google no longer accepts the saved login ({getattr(exc, 'message', None) or exc})",
        "sign in again: gcloud auth application-default login, or check GOOGLE_APPLICATION_CREDENTIALS (in CI, the "
        "credentials the job uses)",
    )


def google_error(exc: Exception, *, action: str, resource: str, api: str, role: str | None = None) -> DokiError:
    """Translate `exc`, raised while doing `action` on `resource`, into a DokiError with a hint."""
    from google.api_core import exceptions

    if is_expired_login(exc):
        return expired_login(exc, f"{action} {resource}")
    detail = getattr(exc, "message", None) or str(exc)
    if isinstance(exc, exceptions.PermissionDenied):
        if "SERVICE_DISABLED" in str(exc) or "has not been used" in detail or "is disabled" in detail:
            return DokiError(
                Code.API_DISABLED,
                f"{action} {resource}: the {API_NAMES[api]} API is not enabled",
                f"enable it: gcloud services enable {API_NAMES[api]}",
            )
        if act_as := _ACT_AS.search(detail):
            return act_as_denied(act_as["email"], f"{action} {resource}", detail)
        needed = f"the {role} role" if role else "a role that allows it"
        return DokiError(
            Code.PERMISSION_DENIED,
            f"{action} {resource}: permission denied ({detail})",
            f"grant your account {needed} on {resource} or its project, or run as an identity that has it",
        )
    if isinstance(exc, exceptions.Unauthenticated):
        return DokiError(
            Code.NOT_AUTHENTICATED,
            f"{action} {resource}: Google did not accept the credentials ({detail})",
            "run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a key file",
        )
    if isinstance(exc, exceptions.NotFound) and (unknown := _NO_GAIA_ID.search(detail)):
        return account_missing(unknown["email"], f"{action} {resource}")
    if isinstance(exc, exceptions.NotFound):
        return DokiError(
            Code.NOT_FOUND,
            f"{action} {resource}: not found ({detail})",
            "check the project and region (doki.toml, --project, --region)",
        )
    if isinstance(exc, exceptions.FailedPrecondition) and "permitted customer" in detail:
        # Domain restricted sharing (iam.allowedPolicyMemberDomains) refused a principal outside the organisation.
        refused = DokiError(
            Code.ORG_POLICY_REFUSED,
            f"{action} {resource}: the organisation's policy refused it: {detail}",
            "name only principals of the organisation's domains, or ask its admins to allow this one "
            "(constraint iam.allowedPolicyMemberDomains)",
        )
        refused.details = {"google": detail}
        return refused
    if isinstance(exc, (exceptions.Aborted, exceptions.FailedPrecondition)) and "etag" in detail.lower():
        return DokiError(
            Code.CONCURRENT_CHANGE,
            f"{action} {resource}: it was changed by someone else meanwhile ({detail})",
            "run the command again: doki re-reads the current state first",
        )
    if isinstance(exc, exceptions.Conflict) and "with different configuration" in detail:
        # Cloud Run compares a template sent under an existing revision name with that revision's.
        return DokiError(
            Code.REVISION_CONFLICT,
            f"{action} {resource}: Google refused it: {detail}",
            "the live template no longer matches the revision it is named after (another tool deployed it last); "
            "a change to the template makes a new revision: `doki deploy` once doki.toml differs from it",
        )
    if isinstance(exc, exceptions.InvalidArgument) and (missing := _NO_ACCOUNT.search(detail)):
        return account_missing(missing["email"], f"{action} {resource}")
    if isinstance(exc, exceptions.InvalidArgument):
        return DokiError(
            Code.INVALID_ARGUMENT, f"{action} {resource}: Google refused it: {detail}", "fix the value named"
        )
    if isinstance(exc, exceptions.TooManyRequests) and getattr(exc, "reason", None) == "RATE_LIMIT_EXCEEDED":
        # A quota, not an outage: retried until the deadline, and still spent (ErrorInfo names which one).
        limit = (getattr(exc, "metadata", None) or {}).get("quota_limit", "a per-minute quota")
        shared = (
            " (every reader of the project's logs shares it: doki, the console, other tools)"
            if api == "logging"
            else ""
        )
        return DokiError(
            Code.QUOTA_EXCEEDED,
            f"{action} {resource}: Google's {limit} quota is spent ({detail})",
            f"wait a minute and run it again{shared}",
        )
    if isinstance(exc, (exceptions.ServiceUnavailable, exceptions.TooManyRequests, exceptions.InternalServerError)):
        return DokiError(
            Code.GOOGLE_UNAVAILABLE,
            f"{action} {resource}: Google kept failing ({detail})",
            "try again in a minute; https://status.cloud.google.com shows outages",
        )
    return DokiError(
        Code.GOOGLE_ERROR, f"{action} {resource}: {type(exc).__name__}: {detail}", "rerun with -v for details"
    )


def act_as_denied(email: str, doing: str, detail: str) -> DokiError:
    """Deploying a service whose revisions run as `email` needs iam.serviceaccounts.actAs on that account, which
    roles/iam.serviceAccountUser grants (roles/run.developer or run.admin do not); and the account must exist."""
    from doki_cli.gcp.serviceaccounts import how_to_create

    return DokiError(
        Code.ACT_AS_DENIED,
        f"{doing}: you may not deploy as {email}, or it does not exist ({detail})",
        f"if it exists, grant your account roles/iam.serviceAccountUser on it: gcloud iam service-accounts "
        f"add-iam-policy-binding {email} --member=user:YOU (or serviceAccount:DEPLOYER) "
        f"--role=roles/iam.serviceAccountUser; if it does not, {how_to_create(email)}",
    )


def account_missing(email: str, doing: str) -> DokiError:
    from doki_cli.gcp.serviceaccounts import how_to_create

    return DokiError(
        Code.SERVICE_ACCOUNT_MISSING,
        f"{doing}: the service account {email} does not exist",
        f"{how_to_create(email)}; or name an account that exists in doki.toml",
    )


def no_credentials(exc: Exception) -> DokiError:
    return DokiError(
        Code.NO_CREDENTIALS,
        f"no Google credentials found ({exc})",
        "run `gcloud auth application-default login`, set GOOGLE_APPLICATION_CREDENTIALS, "
        'or use the local emulator: eval "$(doki emulator env)"',
    )
