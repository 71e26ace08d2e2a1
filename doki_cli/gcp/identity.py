"""Identity tokens for calling a private Cloud Run URL, through google-auth and google-cloud-iam's IAM Credentials
client: the only module that mints them.

Cloud Run lets a private service's callers in with an ID token whose audience is the service's URL
(https://cloud.google.com/run/docs/authenticating/service-to-service). Only a service-account key or the metadata
server can mint one locally (`google.oauth2.id_token.fetch_id_token`): a user's login cannot, and neither can the
workload identity federation credentials of doki's own GitHub workflow. Those mint it through IAM Credentials'
GenerateIdToken instead, as a service account: the one `[release] invoker_account` names, else the one the
credentials impersonate. The caller needs roles/iam.serviceAccountTokenCreator on that account, and the account needs
roles/run.invoker on the service.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from doki_cli.errors import Code, DokiError
from doki_cli.gcp.errors import call_google, expired_login, is_expired_login
from doki_cli.gcp.retry import Retrier

if TYPE_CHECKING:
    from doki_cli.gcp.clients import ClientFactory

TOKEN_CREATOR = "roles/iam.serviceAccountTokenCreator"  # noqa: S105 - a role, not a secret
NAME_AN_ACCOUNT = (
    'set invoker_account = "NAME@PROJECT.iam.gserviceaccount.com" under [release] in doki.toml: an account your '
    f"credentials may impersonate ({TOKEN_CREATOR}) and that may invoke the service (roles/run.invoker); or run as a "
    "service account (a key in GOOGLE_APPLICATION_CREDENTIALS, or on Google Cloud); or set allow_unauthenticated = true"
)


class IdentityTokens:
    def __init__(self, factory: ClientFactory, retrier: Retrier) -> None:
        self._factory = factory
        self._retrier = retrier

    def token(self, audience: str, account: str | None = None) -> str:
        """An ID token for `audience`: minted as `account` when named, else by the credentials themselves, else as
        the account they impersonate."""
        if account is None and not self._factory.emulator:
            # Impersonating credentials first: asking them for a token of their own would only wait on a metadata
            # server that is not there.
            account = _impersonated_account()
            if account is None:
                own = self._own_token(audience)
                if own is not None:
                    return own
        if account is None:
            whose = "the emulator's stand-in credentials" if self._factory.emulator else "your credentials"
            raise DokiError(
                Code.NO_IDENTITY_TOKEN,
                f"no ID token for {audience}: {whose} are no service account's, and no account to mint one as is named",
                NAME_AN_ACCOUNT,
            )
        name = f"projects/-/serviceAccounts/{account}"
        request = {"name": name, "audience": audience, "include_email": True}
        client = self._factory.iam_credentials()
        response = call_google(
            self._retrier,
            partial(client.generate_id_token, request=request),
            action=f"minting an ID token for {audience} as",
            resource=name,
            api="iamcredentials",
            role=TOKEN_CREATOR,
        )
        return str(response.token)

    @staticmethod
    def _own_token(audience: str) -> str | None:
        """A token the credentials mint themselves (a service-account key, the metadata server); None when they
        cannot."""
        import google.auth.transport.requests
        import google.oauth2.id_token
        from google.auth.exceptions import DefaultCredentialsError, RefreshError, TransportError

        try:
            token: str = google.oauth2.id_token.fetch_id_token(  # type: ignore[no-untyped-call]
                google.auth.transport.requests.Request(), audience
            )
        except DefaultCredentialsError:
            return None
        except (RefreshError, TransportError) as exc:
            doing = f"minting an ID token for {audience}"
            if is_expired_login(exc):
                raise expired_login(exc, doing) from None
            raise DokiError(
                Code.NO_IDENTITY_TOKEN,
                f"{doing}: Google refused the credentials' request ({exc})",
                "check GOOGLE_APPLICATION_CREDENTIALS (a key that was deleted or disabled cannot sign), or run "
                f"`gcloud auth application-default login` and {NAME_AN_ACCOUNT}",
            ) from None
        return token


def _impersonated_account() -> str | None:
    """The service account that workload identity federation credentials impersonate (their impersonation URL); None
    for any other credentials, or none."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, _ = google.auth.default()
    except DefaultCredentialsError:
        return None
    from google.auth import external_account

    # An impersonated_service_account file is not one of these: fetch_id_token mints its tokens itself, through
    # its source credentials (which may impersonate), so the account needs no token creator role on itself.
    email = credentials.service_account_email if isinstance(credentials, external_account.Credentials) else None
    return email if isinstance(email, str) and email else None
