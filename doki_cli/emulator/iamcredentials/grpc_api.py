"""google.iam.credentials.v1.IAMCredentials over gRPC: GenerateIdToken, what doki calls for credentials that cannot
mint ID tokens themselves (a user's login, workload identity federation)."""

from __future__ import annotations

import re

from google.cloud import iam_credentials_v1 as creds

from doki_cli.emulator.errors import ApiError, invalid_argument, not_found
from doki_cli.emulator.faults import Faults
from doki_cli.emulator.grpcapi import GrpcService
from doki_cli.emulator.iamadmin.state import ServiceAccounts
from doki_cli.emulator.iamcredentials.tokens import IdTokens

SERVICE = "google.iam.credentials.v1.IAMCredentials"
_NAME = re.compile(r"projects/-/serviceAccounts/(?P<account>[^/]+)")


def service(accounts: ServiceAccounts, tokens: IdTokens, faults: Faults) -> GrpcService:
    api = GrpcService(SERVICE, faults)

    def generate_id_token(request: creds.GenerateIdTokenRequest) -> creds.GenerateIdTokenResponse:
        # "The - wildcard character is required; replacing it with a project ID is invalid" (the request's field
        # comment, google/iam/credentials/v1/common.proto); the refusal's wording is the emulator's.
        match = _NAME.fullmatch(request.name)
        if match is None:
            raise invalid_argument(f"Invalid resource name {request.name}: expected projects/-/serviceAccounts/EMAIL.")
        if not request.audience:
            raise invalid_argument("Request contains an invalid argument: audience is required.")
        email = match["account"]
        # NOT_FOUND "Not found; Gaia id not found for email …", as IAM answers for an account that does not exist
        # (hashicorp/terraform-provider-google#9249). The emulator has no callers, so the caller's
        # roles/iam.serviceAccountTokenCreator on the account is not checked.
        try:
            account = accounts.get(f"projects/-/serviceAccounts/{email}")
        except ApiError:
            raise not_found(f"Not found; Gaia id not found for email {email}") from None
        token = tokens.mint(account, request.audience, include_email=request.include_email)
        return creds.GenerateIdTokenResponse(token=token)

    api.unary("GenerateIdToken", creds.GenerateIdTokenRequest, creds.GenerateIdTokenResponse, generate_id_token)
    return api
