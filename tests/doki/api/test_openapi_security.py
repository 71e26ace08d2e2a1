"""The OpenAPI document declares the bearer scheme on exactly the routes that demand a signed-in user.

"Protected" is read from each route's dependencies (whatever depends on `get_principal`, at any depth), not
from a list, so routes added later are checked too; only the deliberately public routes may go without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from doki.api.deps import PrincipalDep, get_principal
from doki.app import create_app
from doki.auth import Principal
from tests.doki.conftest import development_settings

BEARER = {"HTTPBearer": []}
# Health, and the ways to become signed in: everything else needs a Supabase access token.
PUBLIC = {
    ("GET", "/"),
    ("GET", "/auth/google/login"),
    ("GET", "/auth/google/callback"),
    ("POST", "/auth/signup"),
    ("POST", "/auth/signin"),
}


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return create_app(development_settings(state_dir=tmp_path / "state"))


def operations(app: FastAPI) -> Iterator[tuple[str, str, bool]]:
    """(method, path, protected) for every documented operation, included routers' routes as served."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not context.include_in_schema:
            continue
        # The served route's dependant carries dependencies the including router added, the original's does not.
        dependant = getattr(context, "dependant", None) or route.dependant
        for method in sorted(context.methods or ()):
            yield method, str(context.path_format), _depends_on_principal(dependant)


def _depends_on_principal(dependant: Dependant) -> bool:
    return any(d.call is get_principal or _depends_on_principal(d) for d in dependant.dependencies)


def test_every_route_that_needs_a_user_declares_the_bearer_scheme(app: FastAPI) -> None:
    spec: dict[str, Any] = app.openapi()
    protected = [(method, path) for method, path, needs_user in operations(app) if needs_user]

    assert ("POST", "/connectors/supabase/connect") in protected and ("GET", "/auth/me") in protected
    undeclared = [
        (method, path)
        for method, path in protected
        if BEARER not in spec["paths"][path][method.lower()].get("security", [])
    ]
    assert undeclared == []
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_only_the_intended_public_routes_go_without_a_signed_in_user(app: FastAPI) -> None:
    spec: dict[str, Any] = app.openapi()
    public = {(method, path) for method, path, needs_user in operations(app) if not needs_user}

    assert ("GET", "/") in public
    assert public <= PUBLIC, f"routes without a signed-in user that are not meant to be public: {public - PUBLIC}"
    for method, path in public:
        assert "security" not in spec["paths"][path][method.lower()], f"{method} {path} claims a scheme it lacks"


async def _owner(principal: PrincipalDep) -> Principal:
    return principal


async def _nested(who: Annotated[Principal, Depends(_owner)]) -> dict[str, str]:
    return {"user": who.user_id}


def test_the_walk_sees_dependencies_nested_inside_other_dependencies(app: FastAPI) -> None:
    # A route that needs the user only through another dependency is protected all the same.
    app.add_api_route("/nested", _nested, methods=["GET"])

    assert ("GET", "/nested", True) in set(operations(app))
    assert BEARER in app.openapi()["paths"]["/nested"]["get"]["security"]
