"""Incidents, drills and operators' broadcasts as OASIS CAP 1.2 alerts, and their Atom feed.

One incident is a chain of CAP messages, each derived from what the database holds,
so every replica renders the same documents:
- `opened` (msgType Alert), then `acknowledged` and `escalated-N` (Update), then
  `resolved` (Update with responseType AllClear when it was real or a drill ended;
  Cancel when it was cancelled by its node, a false alarm or a prank);
- identifier `urn:tiengmo:incident:<incident id>:<stage>`; every message after the
  first names the earlier ones in `references` ("sender,identifier,sent" each);
- drills carry status Exercise, real alarms Actual;
- two info blocks, Vietnamese (vi-VN) first, then English (en-US);
- one area: areaDesc from the area names (innermost first), a circle around the
  nodes of that area whose coordinates are known, and a geocode
  `tiengmo:area` = the area path (what the intake maps back exactly).
A broadcast (an operator's warning to an area) is one Alert,
`urn:tiengmo:broadcast:<cmd id>`, expiring when its sound ends.
The feed (GET /api/v1/cap) shows the latest message of each, newest first.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from ..store.snapshots import CommandInfo, IncidentInfo, IncidentState, NodeInfo
from .config import CapSettings
from .texts import (
    CATEGORY,
    KIND_EN,
    KIND_VI,
    SEVERITY,
    STATE_EN,
    STATE_VI,
    area_chain,
    instruction,
)

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_MIME = "application/cap+xml"
GEOCODE_AREA = "tiengmo:area"
MIN_RADIUS_KM = 0.5
_XML_DECL = b'<?xml version="1.0" encoding="UTF-8"?>\n'


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    ms: int
    msg_type: str          # Alert | Update | Cancel


@dataclass(frozen=True, slots=True)
class CapAlert:
    identifier: str
    sent_ms: int
    headline: str
    xml: ET.Element

    def document(self) -> bytes:
        return _XML_DECL + bytes(ET.tostring(self.xml, "utf-8"))


def incident_stages(inc: IncidentInfo) -> list[Stage]:
    stages = [Stage("opened", inc.opened_ms, "Alert")]
    if inc.acknowledged_ms is not None:
        stages.append(Stage("acknowledged", inc.acknowledged_ms, "Update"))
    if inc.escalated_ms is not None and inc.escalation_level > 0:
        stages.append(Stage(f"escalated-{inc.escalation_level}", inc.escalated_ms, "Update"))
    if inc.resolved_ms is not None and not inc.is_open:
        false = inc.state is IncidentState.CANCELLED or (
            inc.outcome is not None and inc.outcome.value in ("false_alarm", "prank"))
        stages.append(Stage("resolved", inc.resolved_ms, "Cancel" if false else "Update"))
    return sorted(stages, key=lambda s: s.ms)


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0 * 2 * math.asin(min(1.0, math.sqrt(a)))


def circle_around(nodes: Iterable[NodeInfo]) -> str | None:
    """"lat,lon radius_km" around the given nodes' coordinates, or None if none is known."""
    pts = [(n.lat, n.lon) for n in nodes if n.lat is not None and n.lon is not None]
    if not pts:
        return None
    lat = sum(p[0] for p in pts) / len(pts)
    lon = sum(p[1] for p in pts) / len(pts)
    radius = max(MIN_RADIUS_KM, max(_km(lat, lon, a, b) for a, b in pts) + MIN_RADIUS_KM)
    return f"{lat:.5f},{lon:.5f} {radius:.2f}"


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, tag)
    if text is not None:
        el.text = text
    return el


class CapBuilder:
    """Renders CAP documents for one hub; `area_names` and `nodes` from the database."""

    def __init__(self, hub_id: str, settings: CapSettings, area_names: dict[str, str],
                 nodes: Sequence[NodeInfo]) -> None:
        self.sender = f"{hub_id}@{settings.sender_domain}"
        self.hub_id = hub_id
        self.tz = ZoneInfo(settings.timezone)
        self.area_names = area_names
        self.nodes = nodes

    def time(self, ms: int) -> str:
        """CAP's dateTime: seconds and a numeric offset, never 'Z' or fractions."""
        return datetime.fromtimestamp(ms / 1000, self.tz).isoformat(timespec="seconds")

    def _alert(self, identifier: str, sent_ms: int, status: str, msg_type: str,
               references: list[str], note: str | None = None) -> ET.Element:
        root = ET.Element("alert", {"xmlns": CAP_NS})
        _sub(root, "identifier", identifier)
        _sub(root, "sender", self.sender)
        _sub(root, "sent", self.time(sent_ms))
        _sub(root, "status", status)
        _sub(root, "msgType", msg_type)
        _sub(root, "source", f"tiengmo hub {self.hub_id}")
        _sub(root, "scope", "Public")
        if note:
            _sub(root, "note", note)
        if references:
            _sub(root, "references", " ".join(references))
        return root

    def _area(self, info: ET.Element, area: str | None) -> None:
        if area is None:
            return
        el = _sub(info, "area")
        _sub(el, "areaDesc", ", ".join(area_chain(area, self.area_names)))
        circle = circle_around(n for n in self.nodes if n.area is not None and (
            n.area == area or n.area.startswith(area + "/")))
        if circle is not None:
            _sub(el, "circle", circle)
        geo = _sub(el, "geocode")
        _sub(geo, "valueName", GEOCODE_AREA)
        _sub(geo, "value", area)

    def _info(self, root: ET.Element, *, lang: str, category: str, event: str,
              response: str | None, urgency: str, severity: str, certainty: str,
              headline: str, description: str, instruction_text: str | None,
              area: str | None, expires_ms: int | None = None) -> None:
        info = _sub(root, "info")
        _sub(info, "language", lang)
        _sub(info, "category", category)
        _sub(info, "event", event)
        if response:
            _sub(info, "responseType", response)
        _sub(info, "urgency", urgency)
        _sub(info, "severity", severity)
        _sub(info, "certainty", certainty)
        if expires_ms is not None:
            _sub(info, "expires", self.time(expires_ms))
        _sub(info, "senderName", "Tiếng mõ an ninh" if lang == "vi-VN" else "tiengmo alert hub")
        _sub(info, "headline", headline[:160])
        _sub(info, "description", description)
        if instruction_text:
            _sub(info, "instruction", instruction_text)
        self._area(info, area)

    # --- incidents and drills ------------------------------------------------------------------

    def incident_id(self, inc: IncidentInfo, stage: Stage) -> str:
        return f"urn:tiengmo:incident:{inc.incident_id}:{stage.name}"

    def incident(self, inc: IncidentInfo, upto: str | None = None) -> CapAlert:
        """The incident's latest CAP message (or the one of stage `upto`)."""
        stages = incident_stages(inc)
        if upto is not None:
            names = [s.name for s in stages]
            if upto not in names:
                raise KeyError(upto)
            stages = stages[:names.index(upto) + 1]
        stage = stages[-1]
        refs = [f"{self.sender},{self.incident_id(inc, s)},{self.time(s.ms)}"
                for s in stages[:-1]]
        ident = self.incident_id(inc, stage)
        status = "Exercise" if inc.drill else "Actual"
        root = self._alert(ident, stage.ms, status, stage.msg_type, refs,
                           note="Diễn tập / Drill" if inc.drill else None)
        area = inc.sounded_area or inc.area
        where = area_chain(area, self.area_names)[0] if area else "?"
        kind_vi, kind_en = KIND_VI.get(inc.kind, inc.kind), KIND_EN.get(inc.kind, inc.kind)
        ended = stage.name == "resolved"
        urgency = "Past" if ended else "Immediate"
        certainty = ("Unlikely" if stage.msg_type == "Cancel" else
                     "Observed" if inc.drill or (inc.outcome is not None
                                                 and inc.outcome.value == "real") else "Likely")
        severity = "Minor" if inc.drill else SEVERITY.get(inc.kind, "Severe")
        response = "AllClear" if ended and stage.msg_type == "Update" else (
            None if ended else "Monitor" if inc.drill else "Execute")
        when = self.time(inc.opened_ms)
        state_vi, state_en = STATE_VI[inc.state.value], STATE_EN[inc.state.value]
        if inc.drill:
            head_vi, head_en = f"DIỄN TẬP tại {where}", f"DRILL at {where}"
            desc_vi = (f"Diễn tập báo động tại {where}, bắt đầu {when}. Đây không phải báo "
                       f"động thật. Trạng thái: {state_vi}.")
            desc_en = (f"Alarm drill at {where}, started {when}. This is not a real alarm. "
                       f"State: {state_en}.")
        else:
            head_vi = f"BÁO ĐỘNG {kind_vi.upper()} tại {where} ({state_vi})"
            head_en = f"{kind_en} alarm at {where} ({state_en})"
            desc_vi = (f"Người dân bấm nút báo động {kind_vi.lower()} tại {where} lúc {when} "
                       f"({inc.alarm_count} lần bấm). Trạng thái: {state_vi}.")
            desc_en = (f"A resident pressed the {kind_en.lower()} alarm button at {where} at "
                       f"{when} ({inc.alarm_count} presses). State: {state_en}.")
        category = CATEGORY.get(inc.kind, "Safety")
        for lang, event, head, desc in (("vi-VN", kind_vi, head_vi, desc_vi),
                                        ("en-US", kind_en, head_en, desc_en)):
            self._info(root, lang=lang, category=category, event=event, response=response,
                       urgency=urgency, severity=severity, certainty=certainty,
                       headline=head, description=desc,
                       instruction_text=None if ended else instruction(inc.kind, lang),
                       area=area)
        return CapAlert(ident, stage.ms, head_vi, root)

    # --- broadcasts ----------------------------------------------------------------------------

    def broadcast(self, cmd: CommandInfo, message: str | None) -> CapAlert:
        ident = f"urn:tiengmo:broadcast:{cmd.cmd_id}"
        root = self._alert(ident, cmd.issued_ms, "Actual", "Alert", [])
        signal = str((cmd.payload.get("pattern") or {}).get("name") or "warning")
        duration = int(cmd.payload.get("duration_s") or 60)
        where = area_chain(cmd.target, self.area_names)[0]
        kind_vi = KIND_VI.get(signal, "Cảnh báo")
        kind_en = KIND_EN.get(signal, "Warning")
        msg = f" {message}" if message else ""
        clear = signal == "all_clear"   # the all-clear signal an operator plays after trouble
        texts = (("vi-VN", f"Cảnh báo: {kind_vi}", f"CẢNH BÁO {kind_vi.upper()} tại {where}",
                  f"Cán bộ trực ban phát cảnh báo tại {where}.{msg}"),
                 ("en-US", f"Warning: {kind_en}", f"{kind_en.upper()} WARNING at {where}",
                  f"The operator on duty sounded a warning at {where}.{msg}"))
        if clear:
            texts = (("vi-VN", "Hết báo động", f"HẾT BÁO ĐỘNG tại {where}",
                      f"Cán bộ trực ban báo hết báo động tại {where}.{msg}"),
                     ("en-US", "All clear", f"ALL CLEAR at {where}",
                      f"The operator on duty gave the all clear at {where}.{msg}"))
        for lang, event, head, desc in texts:
            self._info(root, lang=lang, category=CATEGORY.get(signal, "Safety"), event=event,
                       response="AllClear" if clear else "Prepare",
                       urgency="Past" if clear else "Expected",
                       severity="Minor" if clear else "Moderate",
                       certainty="Observed" if clear else "Likely", headline=head,
                       description=desc,
                       instruction_text=None if clear else instruction(signal, lang),
                       area=cmd.target, expires_ms=cmd.issued_ms + duration * 1000)
        return CapAlert(ident, cmd.issued_ms, texts[0][2], root)

    # --- the feed ------------------------------------------------------------------------------

    def feed(self, alerts: Sequence[CapAlert], self_url: str) -> bytes:
        root = ET.Element("feed", {"xmlns": ATOM_NS})
        _sub(root, "id", f"urn:tiengmo:{self.hub_id}:cap")
        _sub(root, "title", f"Tiếng mõ an ninh: cảnh báo CAP / CAP alerts ({self.hub_id})")
        newest = max((a.sent_ms for a in alerts), default=0)
        _sub(root, "updated", self.time(newest) if newest else "1970-01-01T00:00:00+00:00")
        ET.SubElement(root, "link", {"rel": "self", "href": self_url})
        author = _sub(root, "author")
        _sub(author, "name", self.sender)
        for a in sorted(alerts, key=lambda a: a.sent_ms, reverse=True):
            entry = _sub(root, "entry")
            _sub(entry, "id", a.identifier)
            _sub(entry, "title", a.headline)
            _sub(entry, "updated", self.time(a.sent_ms))
            ET.SubElement(entry, "link", {"rel": "alternate", "type": CAP_MIME,
                                          "href": f"{self_url}/alerts/{a.identifier}"})
            content = ET.SubElement(entry, "content", {"type": CAP_MIME})
            content.append(a.xml)
        return _XML_DECL + bytes(ET.tostring(root, "utf-8"))
