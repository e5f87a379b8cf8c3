"""Nodes: list and health, register, enable/disable/move, test and ping."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from ...errors import InvalidAction
from ...store import NodeInfo
from .. import scope
from ..deps import Admin, Ctx, Operator, Principal, Viewer
from ..errors import ApiError
from ..schemas import CommandPublic, NodeCreate, NodePublic, NodeTestCreate, NodeUpdate
from ..serialize import Presenter, command

router = APIRouter(tags=["nodes"])


def _node(ctx: Ctx, who: Principal, node_id: str) -> NodeInfo:
    return scope.node(ctx, who, node_id)   # 404 also when outside the account's area


def _one(ctx: Ctx, node: NodeInfo) -> NodePublic:
    return Presenter(ctx.history).nodes([node])[0]


@router.get("/nodes", response_model=list[NodePublic], operation_id="nodes_list")
def nodes_list(who: Viewer, ctx: Ctx, area: str | None = None) -> list[NodePublic]:
    """Every node the hub knows (registered or only heard from), with its health."""
    return Presenter(ctx.history).nodes(ctx.store.nodes.find(area=area, scope=who.area))


@router.get("/nodes/{node_id}", response_model=NodePublic, operation_id="nodes_get",
            responses={404: {}})
def nodes_get(node_id: str, who: Viewer, ctx: Ctx) -> NodePublic:
    return _one(ctx, _node(ctx, who, node_id))


@router.post("/nodes", response_model=NodePublic, status_code=201,
             operation_id="nodes_register", responses={409: {}})
def nodes_register(body: NodeCreate, who: Admin, ctx: Ctx) -> NodePublic:
    """Register a node (an unknown node seen on the network, or a new one)."""
    if who.area is not None:   # an admin of a commune registers into it only
        scope.area(ctx, who, body.area)
    existing = ctx.store.nodes.get(body.id)
    if existing is not None and existing.area is not None and not who.sees(existing.area):
        # Another commune's node: never taken over; where it is stays unsaid.
        raise ApiError(409, "conflict", f"node id {body.id!r} is taken; choose another",
                       f"Mã nút {body.id!r} đã được dùng; hãy chọn mã khác.")
    if existing is not None and existing.registered:
        raise ApiError(409, "conflict", f"node {body.id!r} is already registered; "
                       "use PATCH to enable, disable or move it",
                       f"Nút {body.id!r} đã được đăng ký; dùng PATCH để bật, tắt hoặc chuyển.")
    node = ctx.services.register_node(body.id, body.area, who.actor, name=body.name,
                                      households=body.households, lat=body.lat, lon=body.lon,
                                      enabled=body.enabled)
    return _one(ctx, node)


@router.patch("/nodes/{node_id}", response_model=NodePublic, operation_id="nodes_update",
              responses={404: {}, 409: {}})
def nodes_update(node_id: str, body: NodeUpdate, who: Admin, ctx: Ctx) -> NodePublic:
    """Enable, disable or move a registered node."""
    if body.enabled is None and body.area is None:
        raise ApiError(422, "invalid_input", "Nothing to change: give enabled and/or area.",
                       "Không có gì để thay đổi: cần enabled và/hoặc area.")
    node = _node(ctx, who, node_id)
    if body.area is not None and who.area is not None:
        scope.area(ctx, who, body.area)   # nor moves a node out of it
    if not node.registered:
        raise InvalidAction(f"node {node_id!r} is not registered; register it first")
    # Already as asked: nothing to do (another admin's identical change is no conflict).
    if body.area is not None and body.area != node.area:
        node = ctx.services.move_node(node_id, body.area, who.actor,
                                      expected=body.expected_area)
    if body.enabled is not None and body.enabled != node.enabled:
        node = (ctx.services.enable_node if body.enabled else ctx.services.disable_node)(
            node_id, who.actor, expected=body.expected_enabled)
    return _one(ctx, node)


@router.post("/nodes/{node_id}/test", response_model=CommandPublic, status_code=202,
             operation_id="nodes_test", responses={404: {}, 409: {}})
def nodes_test(node_id: str, who: Operator, ctx: Ctx,
               body: Annotated[NodeTestCreate | None, Body()] = None) -> CommandPublic:
    """Ask the node to self-test: it plays the drill pattern briefly and reports."""
    _node(ctx, who, node_id)
    cmd = ctx.services.test_node(node_id, who.actor, body.duration_s if body else None)
    info = ctx.store.commands.get(cmd.cmd_id)
    assert info is not None
    return command(info)


@router.post("/nodes/{node_id}/ping", response_model=CommandPublic, status_code=202,
             operation_id="nodes_ping", responses={404: {}, 409: {}})
def nodes_ping(node_id: str, who: Operator, ctx: Ctx) -> CommandPublic:
    """Ask the node to answer (its `done` result shows up on the command)."""
    _node(ctx, who, node_id)
    cmd = ctx.services.ping_node(node_id, who.actor)
    info = ctx.store.commands.get(cmd.cmd_id)
    assert info is not None
    return command(info)
