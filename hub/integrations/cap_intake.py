"""Taking in a CAP 1.2 alert (a provincial flood warning, say) and sounding it.

Parsing: defusedxml, with DTDs, entities and external references forbidden (no XXE,
no billion laughs, no network). The OASIS schema is not ours to ship, so the
structure is checked here, strictly: the CAP namespace, every element in the
schema's order, the required ones present, every enumeration and date pattern
(tests check the same documents against the real XSD).

Mapping `<area>` to the hub's areas (docs/integrations.md), per <area>:
1. a geocode `tiengmo:area` (what our own feed writes) naming a known area path;
2. otherwise each comma- or semicolon-separated part of `areaDesc`, compared without
   diacritics, case or level words ("Thôn", "Xã", "Huyện", ...) with the area names
   and the paths' last slugs; within one areaDesc the innermost match wins
   ("Thôn Nà Sang, Xã Vi Hương" is the hamlet);
3. otherwise a `circle`: the areas of the nodes whose coordinates lie inside it.
An area whose ancestor is also named is dropped (the ancestor's sound covers it).
Nothing matched is a clear error and nothing sounds.

Sounding: msgType Alert or Update with status Actual → one broadcast per area
(Services.broadcast: priority 3, the kind's pattern when the alert names one, else
`broadcast_signal`); status Exercise or Test → a drill per area; Cancel → recorded,
nothing sounds (operators silence from the dashboard; a broadcast ends by itself);
status System or Draft → recorded only. An `expires` in the past never sounds.
The same (sender, identifier) again is answered with what was done the first time.
"""

from __future__ import annotations

import math
import re
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from ..store.snapshots import AreaInfo, NodeInfo
from .cap import CAP_NS, GEOCODE_AREA, _km

DATE_RE = re.compile(r"^\d\d\d\d-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d$")
_ENUMS = {
    "status": {"Actual", "Exercise", "System", "Test", "Draft"},
    "msgType": {"Alert", "Update", "Cancel", "Ack", "Error"},
    "scope": {"Public", "Restricted", "Private"},
    "category": {"Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env",
                 "Transport", "Infra", "CBRNE", "Other"},
    "responseType": {"Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor",
                     "Assess", "AllClear", "None"},
    "urgency": {"Immediate", "Expected", "Future", "Past", "Unknown"},
    "severity": {"Extreme", "Severe", "Moderate", "Minor", "Unknown"},
    "certainty": {"Observed", "Likely", "Possible", "Unlikely", "Unknown"},
}
_DATES = {"sent", "effective", "onset", "expires"}
# (name, required, repeatable) in the schema's order.
_ALERT = [("identifier", 1, 0), ("sender", 1, 0), ("sent", 1, 0), ("status", 1, 0),
          ("msgType", 1, 0), ("source", 0, 0), ("scope", 1, 0), ("restriction", 0, 0),
          ("addresses", 0, 0), ("code", 0, 1), ("note", 0, 0), ("references", 0, 0),
          ("incidents", 0, 0), ("info", 0, 1)]
_INFO = [("language", 0, 0), ("category", 1, 1), ("event", 1, 0), ("responseType", 0, 1),
         ("urgency", 1, 0), ("severity", 1, 0), ("certainty", 1, 0), ("audience", 0, 0),
         ("eventCode", 0, 1), ("effective", 0, 0), ("onset", 0, 0), ("expires", 0, 0),
         ("senderName", 0, 0), ("headline", 0, 0), ("description", 0, 0),
         ("instruction", 0, 0), ("web", 0, 0), ("contact", 0, 0), ("parameter", 0, 1),
         ("resource", 0, 1), ("area", 0, 1)]
_AREA = [("areaDesc", 1, 0), ("polygon", 0, 1), ("circle", 0, 1), ("geocode", 0, 1),
         ("altitude", 0, 0), ("ceiling", 0, 0)]
_PAIR = [("valueName", 1, 0), ("value", 1, 0)]
_RESOURCE = [("resourceDesc", 1, 0), ("mimeType", 1, 0), ("size", 0, 0), ("uri", 0, 0),
             ("derefUri", 0, 0), ("digest", 0, 0)]
_CHILDREN = {"info": _INFO, "area": _AREA, "geocode": _PAIR, "eventCode": _PAIR,
             "parameter": _PAIR, "resource": _RESOURCE}
LEVEL_WORDS = ("to dan pho", "thi tran", "thanh pho", "thon", "ban", "xom", "xa", "phuong",
               "huyen", "quan", "tinh", "lang", "ap", "khu")
MAX_BYTES = 256 * 1024


class CapError(ValueError):
    """A CAP document that cannot be taken in; the message names the element."""


@dataclass(frozen=True, slots=True)
class CapArea:
    desc: str
    geocodes: tuple[tuple[str, str], ...]
    circles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CapMessage:
    identifier: str
    sender: str
    sent: str
    status: str
    msg_type: str
    categories: tuple[str, ...]
    events: tuple[str, ...]
    headline: str | None
    expires: str | None
    areas: tuple[CapArea, ...]


def _local(el: ET.Element, where: str) -> str:
    ns, _, name = el.tag.rpartition("}")
    if ns != "{" + CAP_NS:
        raise CapError(f"{where}: element {el.tag!r} is not in the CAP 1.2 namespace {CAP_NS}")
    return name


def _check(el: ET.Element, spec: list[tuple[str, int, int]], where: str) -> None:
    """Children in the schema's order, required ones present, enums and dates valid."""
    order = {name: i for i, (name, _r, _m) in enumerate(spec)}
    last, counts = -1, dict.fromkeys(order, 0)
    for child in el:
        if not isinstance(child.tag, str):
            continue   # a comment
        ns = child.tag.rpartition("}")[0]
        if ns != "{" + CAP_NS:
            if el.tag.endswith("}area") or el.tag.endswith("}alert"):
                continue   # the schema allows other namespaces' elements at the end
            raise CapError(f"{where}: element {child.tag!r} is not allowed here")
        name = _local(child, where)
        if name not in order:
            raise CapError(f"{where}: <{name}> is not allowed here")
        if order[name] < last:
            raise CapError(f"{where}: <{name}> is out of the schema's order")
        last = order[name]
        counts[name] += 1
        text = (child.text or "").strip()
        if name in _ENUMS and text not in _ENUMS[name]:
            raise CapError(f"{where}/{name}: {text!r} is not one of "
                           f"{', '.join(sorted(_ENUMS[name]))}")
        if name in _DATES:
            _check_date(text, f"{where}/{name}")
        if name == "circle":
            _check_circle(text, f"{where}/{name}")
        if name in _CHILDREN:
            _check(child, _CHILDREN[name], f"{where}/{name}")
    for name, required, many in spec:
        if required and not counts[name]:
            raise CapError(f"{where}: <{name}> is required")
        if not many and counts[name] > 1:
            raise CapError(f"{where}: <{name}> may appear only once")


# The widest circle taken in (km): a whole province is well inside it. Beyond it (or
# infinite) a circle would sound every node of the hub: an error, not a province.
MAX_CIRCLE_KM = 500.0


def _check_date(text: str, where: str) -> None:
    """The schema's form, and a date and time that exist (no month 13, no hour 25)."""
    if not DATE_RE.match(text):
        raise CapError(f"{where}: {text!r} must look like 2026-11-30T14:00:00+07:00")
    try:
        datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError) as exc:
        raise CapError(f"{where}: {text!r} is not a real date and time ({exc})") from None


def _circle(text: str) -> tuple[float, float, float]:
    centre, radius = text.split()
    lat, lon = (float(x) for x in centre.split(","))
    return lat, lon, float(radius)


def _check_circle(text: str, where: str) -> None:
    """'lat,lon radius_km' with finite numbers, a centre on Earth and a bounded radius."""
    try:
        lat, lon, r = _circle(text)
    except ValueError:
        raise CapError(f"{where}: {text!r} must be 'lat,lon radius_km'") from None
    if not all(math.isfinite(v) for v in (lat, lon, r)):
        raise CapError(f"{where}: {text!r} must have finite numbers (no inf or nan)")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise CapError(f"{where}: {text!r}: the centre must be latitude -90..90, "
                       "longitude -180..180")
    if not 0 <= r <= MAX_CIRCLE_KM:
        raise CapError(f"{where}: {text!r}: the radius must be 0..{MAX_CIRCLE_KM:g} km")


def parse_cap(data: bytes) -> CapMessage:
    """A validated CAP 1.2 alert, or CapError naming what is wrong."""
    if len(data) > MAX_BYTES:
        raise CapError(f"the document is larger than {MAX_BYTES // 1024} KiB")
    try:
        root = DET.fromstring(data, forbid_dtd=True, forbid_entities=True,
                              forbid_external=True)
    except DefusedXmlException as exc:
        raise CapError(f"refused: DTDs, entities and external references are not allowed "
                       f"({type(exc).__name__})") from None
    except ET.ParseError as exc:
        raise CapError(f"not well-formed XML: {exc}") from None
    if root.tag != "{" + CAP_NS + "}alert":
        raise CapError(f"the root element must be <alert> in {CAP_NS}, not {root.tag!r}")
    _check(root, _ALERT, "alert")

    def text(el: ET.Element, name: str) -> str | None:
        found = el.find(f"{{{CAP_NS}}}{name}")
        return (found.text or "").strip() if found is not None else None

    def texts(el: ET.Element, name: str) -> list[str]:
        return [(c.text or "").strip() for c in el.findall(f"{{{CAP_NS}}}{name}")]

    infos = root.findall(f"{{{CAP_NS}}}info")
    areas: list[CapArea] = []
    for info in infos:
        for a in info.findall(f"{{{CAP_NS}}}area"):
            geos = tuple((text(g, "valueName") or "", text(g, "value") or "")
                         for g in a.findall(f"{{{CAP_NS}}}geocode"))
            areas.append(CapArea(text(a, "areaDesc") or "", geos, tuple(texts(a, "circle"))))
    expires = [t for i in infos for t in texts(i, "expires")]
    headlines = [t for i in infos for t in texts(i, "headline")]
    return CapMessage(
        identifier=text(root, "identifier") or "", sender=text(root, "sender") or "",
        sent=text(root, "sent") or "", status=text(root, "status") or "",
        msg_type=text(root, "msgType") or "",
        categories=tuple(c for i in infos for c in texts(i, "category")),
        events=tuple(e for i in infos for e in texts(i, "event")),
        headline=headlines[0] if headlines else None,
        expires=min(expires, key=_epoch) if expires else None, areas=tuple(areas))


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def expired(msg: CapMessage, now_ms: int) -> bool:
    return msg.expires is not None and _epoch(msg.expires) * 1000 <= now_ms


def _fold(text: str) -> str:
    """Lower case, no diacritics (đ → d), single spaces."""
    text = text.replace("đ", "d").replace("Đ", "D")
    text = "".join(c for c in unicodedata.normalize("NFD", text)
                   if unicodedata.category(c) != "Mn")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def _core(text: str) -> str:
    """A place name without its level word: "Thôn Nà Sang" → "na sang"."""
    folded = _fold(text)
    for word in LEVEL_WORDS:
        if folded.startswith(word + " "):
            return folded[len(word) + 1:]
    return folded


def _inside(circle: str, node: NodeInfo) -> bool:
    try:
        lat, lon, r = _circle(circle)
    except ValueError:
        raise CapError(f"area/circle: {circle!r} must be 'lat,lon radius_km'") from None
    return (node.lat is not None and node.lon is not None
            and _km(lat, lon, node.lat, node.lon) <= r)


def map_areas(msg: CapMessage, areas: list[AreaInfo], nodes: list[NodeInfo]) -> list[str]:
    """The hub's area paths the alert names (see the module's docstring for the rules)."""
    paths = {a.path for a in areas}
    by_name: dict[str, set[str]] = {}
    for a in areas:
        for key in {_core(a.name), _fold(a.name), a.path.rsplit("/", 1)[-1].replace("-", " ")}:
            by_name.setdefault(key, set()).add(a.path)
    chosen: set[str] = set()
    unmatched: list[str] = []
    for ca in msg.areas:
        geo = {v for n, v in ca.geocodes if n == GEOCODE_AREA and v in paths}
        if geo:
            chosen |= geo
            continue
        named: set[str] = set()
        for part in re.split(r"[,;]", ca.desc):
            if part.strip():
                named |= by_name.get(_core(part), set()) | by_name.get(_fold(part), set())
        # Within one areaDesc, "Thôn Nà Sang, Xã Vi Hương" means the hamlet.
        inner = {p for p in named if not any(q.startswith(p + "/") for q in named)}
        if inner:
            chosen |= inner
            continue
        inside = {n.area for c in ca.circles for n in nodes
                  if n.area and n.registered and _inside(c, n)}
        if inside:
            chosen |= inside
            continue
        unmatched.append(ca.desc)
    if not chosen:
        what = "; ".join(repr(d) for d in unmatched) or "(no <area>)"
        raise CapError(f"no area of this hub matches the alert's areas: {what}")
    # An area whose ancestor is also named is covered by the ancestor's sound.
    return sorted(p for p in chosen if not any(p.startswith(q + "/") for q in chosen))


def signal_for(msg: CapMessage, default: str) -> str:
    """The pattern to play: the kind the alert is about, when it names one we know."""
    words = _fold(" ".join((*msg.events, msg.headline or "")))
    if "Fire" in msg.categories or "chay" in words.split() or "fire" in words:
        return "fire"
    if "flood" in words or "lu" in words.split() or "lut" in words.split():
        return "flood"
    return default
