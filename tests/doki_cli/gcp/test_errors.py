"""Google's errors as users meet them: each names what failed and the fix."""

from __future__ import annotations

from google.api_core import exceptions

from doki_cli.gcp.errors import google_error
from doki_cli.gcp.retry import is_transient

RESOURCE = "projects/p/secrets/s"


def test_a_disabled_api_says_which_api_to_enable() -> None:
    error = exceptions.PermissionDenied("Secret Manager API has not been used in project 123 before or it is disabled.")
    translated = google_error(error, action="creating", resource=RESOURCE, api="secretmanager")
    assert translated.code == "api_disabled"
    assert translated.message == f"creating {RESOURCE}: the secretmanager.googleapis.com API is not enabled"
    assert translated.hint == "enable it: gcloud services enable secretmanager.googleapis.com"


def test_permission_denied_names_the_role_and_the_resource() -> None:
    translated = google_error(
        exceptions.PermissionDenied("denied"), action="reading", resource=RESOURCE, api="secretmanager", role="roles/x"
    )
    assert translated.code == "permission_denied"
    assert (
        translated.hint
        == f"grant your account the roles/x role on {RESOURCE} or its project, or run as an identity that has it"
    )


def test_bad_credentials_say_how_to_log_in() -> None:
    translated = google_error(exceptions.Unauthenticated("expired"), action="reading", resource=RESOURCE, api="run")
    assert translated.code == "not_authenticated"
    assert "gcloud auth application-default login" in (translated.hint or "")


def test_a_stale_etag_says_to_run_again() -> None:
    translated = google_error(exceptions.Aborted("etag mismatch"), action="updating", resource=RESOURCE, api="run")
    assert translated.code == "concurrent_change"


def test_a_missing_resource_points_at_project_and_region() -> None:
    translated = google_error(exceptions.NotFound("nope"), action="reading", resource=RESOURCE, api="run")
    assert (translated.code, translated.hint) == (
        "not_found",
        "check the project and region (doki.toml, --project, --region)",
    )


def test_a_template_sent_under_a_taken_revision_name_says_how_to_make_a_new_revision() -> None:
    refused = exceptions.AlreadyExists("Revision named 'api-blue' with different configuration already exists.")

    translated = google_error(refused, action="updating", resource=RESOURCE, api="run")

    assert (translated.code, translated.message, translated.hint) == (
        "revision_conflict",
        f"updating {RESOURCE}: Google refused it: Revision named 'api-blue' with different configuration already "
        "exists.",
        "the live template no longer matches the revision it is named after (another tool deployed it last); "
        "a change to the template makes a new revision: `doki deploy` once doki.toml differs from it",
    )


REAUTH = (
    "Getting metadata from plugin failed with error: Reauthentication is needed. Please run `gcloud auth "
    "application-default login` to reauthenticate."
)


def test_an_expired_login_reported_as_unavailable_by_grpcs_auth_plugin_is_named_at_once_and_never_retried() -> None:
    unavailable = exceptions.ServiceUnavailable(REAUTH)
    assert not is_transient(unavailable)
    assert is_transient(exceptions.ServiceUnavailable("connection reset"))
    translated = google_error(unavailable, action="reading", resource=RESOURCE, api="run")
    assert translated.code == "credentials_expired"
    assert translated.message == f"reading {RESOURCE}: Google no longer accepts the saved login ({REAUTH})"
    assert translated.hint == (
        "sign in again: gcloud auth application-default login, or check GOOGLE_APPLICATION_CREDENTIALS (in CI, the "
        "credentials the job uses)"
    )


def test_a_jwt_refused_for_its_times_is_not_taken_for_an_expired_login() -> None:
    skew = exceptions.ServiceUnavailable(
        "Getting metadata from plugin failed with error: ('invalid_grant: Invalid JWT: Token must be a short-lived "
        "token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.')"
    )
    assert google_error(skew, action="reading", resource=RESOURCE, api="run").code != "credentials_expired"
