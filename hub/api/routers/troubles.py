"""Troubles: nodes lost, areas lost, sounders that failed, noisy nodes, ..."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ..deps import Ctx, Viewer
from ..schemas import TroublePublic
from ..serialize import trouble

router = APIRouter(tags=["troubles"])


@router.get("/troubles", response_model=list[TroublePublic], operation_id="troubles_list")
def troubles_list(who: Viewer, ctx: Ctx, open: bool = True, kind: str | None = None,
                  subject: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 500) -> list[TroublePublic]:
    """Open troubles (or, with open=false, the history too), newest first."""
    return [trouble(t) for t in ctx.store.troubles.find(open, kind=kind, subject=subject,
                                                        limit=limit, scope=who.area)]
