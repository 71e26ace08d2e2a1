"""google.iam.admin.v1.IAM over gRPC: the service-account methods doki calls (get, create, list)."""

from __future__ import annotations

import re

from google.cloud import iam_admin_v1 as iam

from doki_cli.emulator.errors import invalid_argument
from doki_cli.emulator.faults import Faults
from doki_cli.emulator.grpcapi import GrpcService
from doki_cli.emulator.iamadmin.state import Account, ServiceAccounts

SERVICE = "google.iam.admin.v1.IAM"
_PROJECT = re.compile(r"projects/(?P<project>[^/-][^/]*)")


def message(account: Account) -> iam.ServiceAccount:
    return iam.ServiceAccount(
        name=account.name,
        project_id=account.project,
        unique_id=account.unique_id,
        email=account.email,
        display_name=account.display_name,
        description=account.description,
        oauth2_client_id=account.unique_id,
        etag=b"BwY" + account.unique_id[:5].encode(),
    )


def _project(name: str) -> str:
    match = _PROJECT.fullmatch(name)
    if match is None:
        raise invalid_argument(f"Invalid project name {name}: expected projects/PROJECT.")
    return match["project"]


def service(accounts: ServiceAccounts, faults: Faults) -> GrpcService:
    api = GrpcService(SERVICE, faults)

    def create(request: iam.CreateServiceAccountRequest) -> iam.ServiceAccount:
        # Only display_name and description are the caller's to choose (CreateServiceAccountRequest.service_account).
        given = request.service_account
        return message(
            accounts.create(_project(request.name), request.account_id, given.display_name, given.description)
        )

    def list_accounts(request: iam.ListServiceAccountsRequest) -> iam.ListServiceAccountsResponse:
        found, token = accounts.list(_project(request.name), request.page_size, request.page_token)
        return iam.ListServiceAccountsResponse(accounts=[message(a) for a in found], next_page_token=token)

    api.unary(
        "GetServiceAccount", iam.GetServiceAccountRequest, iam.ServiceAccount, lambda r: message(accounts.get(r.name))
    )
    api.unary("CreateServiceAccount", iam.CreateServiceAccountRequest, iam.ServiceAccount, create)
    api.unary("ListServiceAccounts", iam.ListServiceAccountsRequest, iam.ListServiceAccountsResponse, list_accounts)
    return api
