"""Jinja filters for Mosquitto credentials.

`mosquitto_passwd` salts every hash at random, so re-running it rewrites the
password file on every apply and Ansible could never report "no change".
This filter writes the same format (`$7$` = PBKDF2-HMAC-SHA512, the format
of mosquitto_passwd in Mosquitto 2.x) with a salt derived from the user name
and the password, so the same credential always gives the same line and a
rotated credential gives a new one. The tests prove a real Mosquitto accepts
these lines.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

ITERATIONS = 101  # what mosquitto_passwd uses
SALT_BYTES = 12


def mosquitto_hash(password: str, username: str, iterations: int = ITERATIONS) -> str:
    """The password-file hash (`$7$iter$salt$hash`) for one user."""
    if not password:
        raise ValueError(f"mosquitto_hash: empty password for user {username!r}")
    salt = hmac.new(password.encode(), b"tiengmo-mosquitto-salt:" + username.encode(),
                    hashlib.sha256).digest()[:SALT_BYTES]
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    salt_b64 = base64.b64encode(salt).decode()
    digest_b64 = base64.b64encode(digest).decode()
    return f"$7${iterations}${salt_b64}${digest_b64}"


class FilterModule:
    """Filters: mosquitto_hash."""

    def filters(self) -> dict[str, Any]:
        return {"mosquitto_hash": mosquitto_hash}
