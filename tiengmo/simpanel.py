"""The demo's simulator panel routes, added to the hub's app by `tiengmo demo`.

    GET  /api/v1/sim/nodes              every virtual node: buttons, outputs, LED, power
    POST /api/v1/sim/nodes/{id}/press   hold one of its buttons, as a household would
    GET  /api/v1/sim/households         the registry's households (alarm by phone)
    POST /api/v1/sim/households/{id}/sms   text the hub's modem as that household
    POST /api/v1/sim/households/{id}/call  ring the hub's modem as that household
    GET  /api/v1/sim/phone/messages     the SMS the hub's modem sent (its replies)
    POST /api/v1/sim/power              cut (or restore) mains for every node of an area

The phone routes go through the demo's simulated modem (modem.sim, a pty the hub's
SMS worker drives with AT commands), exactly as a real phone reaches a real modem.

It lives in the edge (`tiengmo/`), not in `dashboard/` or `hub/`: it needs both the
hub's API dependencies and the simulator, and only the edge may know both
(ARCHITECTURE.md). The hub never imports it; `tiengmo demo` calls `mount(app, demo)`
with an object whose `village` is a firmware_sim Village (or None while it is still
starting). Authentication and CSRF are the API's own dependencies (hub.api.deps), so
the panel is protected exactly like the rest: any logged-in user may look, operators
and admins may press. The dashboard's panel (static/js) talks to it over HTTP only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, ConfigDict, Field

from hub.api.deps import Operator, Viewer
from hub.api.errors import ApiError, not_found

PREFIX = "/api/v1/sim"


class SimButton(BaseModel):
    number: int
    kind: str


class SimNode(BaseModel):
    id: str
    area: str
    buttons: list[SimButton]
    outputs: dict[str, bool]
    led: str | None
    sounding: bool
    running: bool
    mains: bool
    battery_pct: float | None


class PowerSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    area: str = Field(min_length=1, max_length=255, description="an area path, e.g. a commune")
    mains: bool = Field(description="false: the grid feeder trips; true: power is back")


class PowerDone(BaseModel):
    area: str
    mains: bool
    nodes: int


class PressCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    button: int = Field(ge=0, le=99, description="the button's number on the node")


class PressAccepted(BaseModel):
    id: str
    button: int
    kind: str
    hold_s: float


class HouseholdSim(BaseModel):
    id: str
    area: str
    name: str | None
    phone: str


class SmsCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=160)


class PhoneAccepted(BaseModel):
    id: str
    phone: str
    what: str


class SentSms(BaseModel):
    number: str
    text: str


def _modem(demo: Any) -> Any:
    modem = getattr(demo, "modem", None)
    if modem is None:
        raise ApiError(503, "starting", "The simulated modem is not running.",
                       "Modem mô phỏng chưa chạy.", headers={"Retry-After": "2"})
    return modem


def _household(demo: Any, household_id: str) -> Any:
    reg = getattr(getattr(demo, "hub", None), "registry", None)
    found = next((h for h in (reg.households if reg else ()) if h.id == household_id), None)
    if found is None:
        raise not_found(f"household {household_id!r}", f"hộ {household_id!r}")
    return found


def _village(demo: Any) -> Any:
    village = getattr(demo, "village", None)
    if village is None:
        # The demo serves HTTP before its nodes are up: say so rather than show nothing.
        raise ApiError(503, "starting", "The simulated village is still starting.",
                       "Làng mô phỏng đang khởi động.", headers={"Retry-After": "2"})
    return village


def _describe(node: Any) -> SimNode:
    hw = node.config.hardware
    outputs = {o.name: bool(node.output_on(o.name)) for o in hw.outputs}
    led = node.led_state
    return SimNode(
        id=node.node_id, area=node.config.area,
        buttons=[SimButton(number=b.number, kind=str(b.kind)) for b in hw.buttons],
        outputs=outputs, led=None if led is None else str(led.value),
        sounding=bool(node.is_sounding()), running=node.agent is not None,
        mains=bool(node.mains),
        battery_pct=round(node.gauge.percent, 1) if node.config.battery else None)


def router_for(demo: Any) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["simulator"])

    @router.get("/nodes", response_model=list[SimNode], operation_id="sim_nodes_list")
    def sim_nodes(_who: Viewer) -> list[SimNode]:
        """Every virtual node with its buttons, outputs (on/off) and status LED."""
        return [_describe(n) for n in _village(demo).nodes]

    @router.post("/nodes/{node_id}/press", response_model=PressAccepted, status_code=202,
                 operation_id="sim_nodes_press", responses={404: {}, 409: {}, 503: {}})
    def sim_press(node_id: str, body: PressCreate, _who: Operator) -> PressAccepted:
        """Hold a button for its hold time (plus a little), without waiting for it."""
        village = _village(demo)
        try:
            node = village[node_id]
        except KeyError:
            raise not_found(f"simulated node {node_id!r}", f"nút mô phỏng {node_id!r}") from None
        button = next((b for b in node.config.hardware.buttons if b.number == body.button), None)
        if button is None:
            raise not_found(f"button {body.button} of {node_id!r}",
                            f"nút bấm {body.button} của {node_id!r}")
        if node.agent is None:
            raise ApiError(409, "node_stopped", f"{node_id} is not running.",
                           f"Nút {node_id} không chạy.")
        node.press(button.number, block=False)
        return PressAccepted(id=node_id, button=button.number, kind=str(button.kind),
                             hold_s=button.hold_s + 0.1)

    @router.get("/households", response_model=list[HouseholdSim],
                operation_id="sim_households_list")
    def sim_households(_who: Operator) -> list[HouseholdSim]:
        """The households that may alarm by phone, with the number they call from."""
        reg = getattr(getattr(demo, "hub", None), "registry", None)
        return [HouseholdSim(id=h.id, area=h.area, name=h.name, phone=h.phones[0])
                for h in (reg.households if reg else ())]

    @router.post("/households/{household_id}/sms", response_model=PhoneAccepted,
                 status_code=202, operation_id="sim_households_sms",
                 responses={404: {}, 503: {}})
    def sim_sms(household_id: str, body: SmsCreate, _who: Operator) -> PhoneAccepted:
        """The household texts the hub's modem (e.g. "CHÁY", or "1" to confirm a call)."""
        h = _household(demo, household_id)
        _modem(demo).deliver_sms(h.phones[0], body.text)
        return PhoneAccepted(id=h.id, phone=h.phones[0], what="sms")

    @router.post("/households/{household_id}/call", response_model=PhoneAccepted,
                 status_code=202, operation_id="sim_households_call",
                 responses={404: {}, 503: {}})
    def sim_call(household_id: str, _who: Operator) -> PhoneAccepted:
        """The household rings the hub's modem (a missed call: the hub never answers)."""
        h = _household(demo, household_id)
        _modem(demo).ring(h.phones[0])
        return PhoneAccepted(id=h.id, phone=h.phones[0], what="call")

    @router.get("/phone/messages", response_model=list[SentSms],
                operation_id="sim_phone_messages")
    def sim_messages(_who: Operator) -> list[SentSms]:
        """The last 50 SMS the hub sent through its modem, newest last."""
        return [SentSms(number=m.number, text=m.text) for m in _modem(demo).messages[-50:]]

    @router.post("/power", response_model=PowerDone, status_code=202,
                 operation_id="sim_power_set", responses={404: {}, 503: {}})
    def sim_power(body: PowerSet, _who: Operator) -> PowerDone:
        """Cut or restore mains for every node in an area (and below): a grid feeder
        tripping over a commune. Each node's power-good input drops and its UPS HAT's
        battery starts draining; the hub hears it in the next heartbeats."""
        nodes = _village(demo).in_area(body.area)
        if not nodes:
            raise not_found(f"simulated nodes in {body.area!r}",
                            f"nút mô phỏng trong {body.area!r}")
        for n in nodes:
            n.set_power(body.mains)
        return PowerDone(area=body.area, mains=body.mains, nodes=len(nodes))

    return router


def mount(app: FastAPI, demo: Any) -> None:
    """Add the panel's routes to the hub's `app` (made by hub.app.create_app)."""
    app.include_router(router_for(demo))
