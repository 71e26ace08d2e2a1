"""Who the caller is, as the backend sees them."""

from fastapi import APIRouter
from pydantic import BaseModel

from doki.api.deps import PrincipalDep

router = APIRouter(prefix="/auth", tags=["auth"])


class PrincipalOut(BaseModel):
    user_id: str
    email: str | None
    role: str


@router.get("/me", response_model=PrincipalOut, summary="The authenticated user")
async def me(principal: PrincipalDep) -> PrincipalOut:
    return PrincipalOut(user_id=principal.user_id, email=principal.email, role=principal.role)
