"""Secrets of the operators' API: argon2 password hashes, random tokens and their digests,
and the CSRF token bound to a session.

Passwords are hashed with argon2id (argon2-cffi's RFC 9106 defaults). Session and API
tokens are 256-bit random values: the database keeps only their SHA-256 (a fast hash
is right for a random value, and it lets every request look its token up). The CSRF
token is an HMAC of the session token under the hub's secret, so it needs no storage
and is worthless without the session it belongs to.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

TOKEN_PREFIX = "tgm_"
MIN_PASSWORD = 10
MAX_PASSWORD = 1024

_hasher = PasswordHasher()
# Verified when the user name is unknown, so a wrong name costs as long as a wrong
# password and timing does not tell which names exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_problem(password: str) -> str | None:
    """Why `password` cannot be used (English), or None."""
    if len(password) < MIN_PASSWORD:
        return f"the password must have at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"the password must have at most {MAX_PASSWORD} characters"
    return None


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def new_api_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_token(secret: str, session_token: str) -> str:
    mac = hmac.new(secret.encode("utf-8"), b"csrf:" + session_token.encode("utf-8"),
                   hashlib.sha256)
    return mac.hexdigest()


def csrf_ok(secret: str, session_token: str, presented: str | None) -> bool:
    if not presented:
        return False
    return hmac.compare_digest(csrf_token(secret, session_token), presented)


# --- known devices ---------------------------------------------------------------------------
# A browser that has logged in as a user carries a signed note of it (the `tiengmo_device`
# cookie: up to DEVICE_USERS entries "user:issued_ms:mac" joined by "~"). Guessing at that
# user from elsewhere never slows down or locks out this browser (docs/api.md).
DEVICE_USERS = 5


def _device_mac(secret: str, username: str, issued_ms: int) -> str:
    msg = f"device:{username}:{issued_ms}".encode()
    return hmac.new(secret.encode("utf-8"), msg, hashlib.sha256).hexdigest()[:32]


def _device_entries(cookie: str | None) -> list[tuple[str, int, str]]:
    out: list[tuple[str, int, str]] = []
    for part in (cookie or "").split("~")[:DEVICE_USERS]:
        bits = part.rsplit(":", 2)
        if len(bits) == 3 and bits[0] and bits[1].isdigit() and len(bits[1]) < 16:
            out.append((bits[0], int(bits[1]), bits[2]))
    return out


def known_device(secret: str, cookie: str | None, username: str, now_ms: int,
                 max_age_ms: int) -> str | None:
    """This browser's client key ("dev:...") if it logged in as `username` before (a valid,
    unexpired signature under the hub's secret), else None."""
    for user, issued, mac in _device_entries(cookie):
        if user != username or not 0 <= now_ms - issued <= max_age_ms:
            continue
        if hmac.compare_digest(_device_mac(secret, user, issued), mac):
            return "dev:" + mac[:16]
    return None


def device_cookie(secret: str, cookie: str | None, username: str, now_ms: int) -> str:
    """The cookie with `username` (re)signed now, most recent first."""
    keep = [e for e in _device_entries(cookie) if e[0] != username][:DEVICE_USERS - 1]
    entries = [(username, now_ms, _device_mac(secret, username, now_ms)), *keep]
    return "~".join(f"{u}:{i}:{m}" for u, i, m in entries)


def random_password() -> str:
    return secrets.token_urlsafe(12)
