"""API tokens for integrations (an admin without an area only): shown once, stored as
SHA-256, revocable; each hub-wide or limited to an area subtree."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from .. import security, serialize
from ..deps import Ctx, HubAdmin
from ..schemas import INT64_MAX, TokenCreate, TokenCreated, TokenPublic
from ..scope import account_area

router = APIRouter(tags=["tokens"])


@router.get("/tokens", response_model=list[TokenPublic], operation_id="tokens_list")
def tokens_list(_who: HubAdmin, ctx: Ctx) -> list[TokenPublic]:
    return [serialize.token(t) for t in ctx.auth.tokens()]


@router.post("/tokens", response_model=TokenCreated, status_code=201,
             operation_id="tokens_create")
def tokens_create(body: TokenCreate, who: HubAdmin, ctx: Ctx) -> TokenCreated:
    """A new token with `role` (and `area`, if limited); the answer holds it once."""
    area = account_area(ctx, body.area)
    token = security.new_api_token()
    info = ctx.auth.create_token(body.name, body.role, security.digest(token),
                                 token[:len(security.TOKEN_PREFIX) + 6], who.actor, area=area)
    return TokenCreated(**serialize.token(info).model_dump(), token=token)


@router.delete("/tokens/{token_id}", status_code=204, operation_id="tokens_revoke",
               responses={404: {}})
def tokens_revoke(token_id: Annotated[int, Path(ge=1, le=INT64_MAX)], who: HubAdmin,
                  ctx: Ctx) -> Response:
    """Revoke a token: the next request with it gets 401."""
    ctx.auth.revoke_token(token_id, who.actor)
    return Response(status_code=204)
