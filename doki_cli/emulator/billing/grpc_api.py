"""google.cloud.billing.v1.CloudCatalog over gRPC (the Python client's default transport)."""

from __future__ import annotations

from google.cloud.billing_v1 import types

from doki_cli.emulator.billing.state import Catalog
from doki_cli.emulator.faults import Faults
from doki_cli.emulator.grpcapi import GrpcService, Method

SERVICE = "google.cloud.billing.v1.CloudCatalog"


def service(catalog: Catalog, faults: Faults) -> GrpcService:
    def list_services(request: types.ListServicesRequest) -> types.ListServicesResponse:
        page, token = catalog.list_services(request.page_size, request.page_token)
        return types.ListServicesResponse(services=page, next_page_token=token)

    def list_skus(request: types.ListSkusRequest) -> types.ListSkusResponse:
        if request.currency_code not in ("", "USD"):
            # The emulator prices in USD alone (ListSkusRequest.currency_code: "If not specified USD will be used").
            from doki_cli.emulator.errors import invalid_argument

            raise invalid_argument(f"The doki emulator's catalog is in USD only, not {request.currency_code}.")
        page, token = catalog.list_skus(request.parent, request.page_size, request.page_token)
        return types.ListSkusResponse(skus=page, next_page_token=token)

    api = GrpcService(SERVICE, faults)
    api.add(
        {
            "ListServices": Method(types.ListServicesRequest, types.ListServicesResponse, list_services),
            "ListSkus": Method(types.ListSkusRequest, types.ListSkusResponse, list_skus),
        }
    )
    return api
