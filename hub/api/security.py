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


def random_password() -> str:
    return secrets.token_urlsafe(12)
