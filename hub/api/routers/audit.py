"""The audit log: who did what, when (append-only in the database itself)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ..deps import Ctx, HubAdmin
from ..schemas import INT64_MAX, AuditPublic

router = APIRouter(tags=["audit"])


@router.get("/audit", response_model=list[AuditPublic], operation_id="audit_list")
def audit_list(_who: HubAdmin, ctx: Ctx, actor: str | None = None, action: str | None = None,
               subject: str | None = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 200,
               offset: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0) -> list[AuditPublic]:
    """Audit entries, newest first."""
    return [AuditPublic(id=e.id, ts_ms=e.ts_ms, actor=e.actor, action=e.action,
                        subject=e.subject, detail=e.detail)
            for e in ctx.store.audit.entries(actor=actor, action=action, subject=subject,
                                             limit=limit, offset=offset)]
