"""Bytes on the wire <-> typed messages, validated once at the edge."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from .errors import PayloadError, ProtocolError
from .ids import is_uuid
from .messages import VERSION, Alarm, Message

MAX_PAYLOAD_BYTES = 4096
# No message of PROTOCOL.md nests deeper than 3; unknown fields may nest a little more.
# Checked before parsing, so a verdict never depends on how deep the caller's stack is
# (json.loads fails on its recursion limit at a depth that varies with the caller).
MAX_DEPTH = 32

M = TypeVar("M", bound=Message)


def _no_constants(token: str) -> Any:
    raise ValueError(f"{token} is not JSON")


def encode(msg: Message) -> bytes:
    """The compact UTF-8 JSON of a message; refuses one over 4096 bytes."""
    data = json.dumps(msg.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()
    if len(data) > MAX_PAYLOAD_BYTES:
        raise PayloadError("too_large", f"payload is {len(data)} bytes, limit {MAX_PAYLOAD_BYTES}")
    return data


def parse_object(payload: bytes | bytearray | memoryview | str) -> dict[str, Any]:
    """The JSON object inside a payload, after size, UTF-8 and version checks."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8", "surrogatepass")
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise PayloadError("wrong_type", "payload must be bytes")
    raw = bytes(payload)
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise PayloadError("too_large", f"payload is {len(raw)} bytes, limit {MAX_PAYLOAD_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError("not_utf8", f"payload is not UTF-8 (byte {exc.start})") from None
    if _too_deep(text):
        raise PayloadError("not_json", f"payload is nested deeper than {MAX_DEPTH} levels")
    try:
        obj = json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        raise PayloadError("not_json", "payload is nested too deeply") from None
    except ValueError as exc:
        raise PayloadError("not_json", f"payload is not JSON: {str(exc)[:80]}") from None
    if not isinstance(obj, dict):
        raise PayloadError("not_object", "payload must be a JSON object")
    return obj


def _too_deep(text: str) -> bool:
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False   # the usual case: too few brackets to matter, no scan
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _check_version(obj: dict[str, Any]) -> None:
    if "v" not in obj:
        raise PayloadError("missing_field", "field 'v' is required", field="v")
    v = obj["v"]
    if isinstance(v, bool) or not isinstance(v, int):
        raise PayloadError("wrong_type", "field 'v' must be an integer", field="v")
    if v != VERSION:
        raise PayloadError("unsupported_version", f"version {v} is not supported (only 1)",
                           field="v")


def decode(cls: type[M], payload: bytes | bytearray | memoryview | str) -> M:
    """Parse and validate a payload as `cls`, or raise PayloadError.

    Never raises anything else, whatever the bytes.
    """
    obj = parse_object(payload)
    try:
        _check_version(obj)
        return cls.from_dict(obj)
    except ProtocolError as exc:
        if cls is Alarm and is_uuid(obj.get("alarm_id")):
            exc.alarm_id = str(obj["alarm_id"]).lower()
        raise
    except (TypeError, ValueError, RecursionError) as exc:  # pragma: no cover - safety net
        raise PayloadError("bad_value", f"invalid payload: {exc}") from None
