"""Before `tiengmo hub` starts: is this a misconfiguration, or just not up yet?

A misconfiguration will not fix itself, so the command stops at once in plain words
(exit 2): a host name that does not exist, credentials the broker refuses, a TLS
certificate that does not match, a database login or name PostgreSQL refuses. A
broker or database that is merely unreachable (connection refused, timed out, the
name server not answering yet) is not one: after a power cut the hub may boot before
PostgreSQL or Mosquitto, so the hub waits and keeps trying (docs/hub-config.md).

The broker is asked once with the hub's own client id and login (brokers bind the
two); the connection is closed at once, cleanly, so no Will is sent. hub.link stays
the module that carries the hub's MQTT traffic; this one only knocks on the door.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

# MQTT 5 CONNACK reason codes (MQTT 3.1.1's 2, 4 and 5 arrive mapped onto them):
# these mean "this login or client id will never be accepted".
REFUSED_FOR_GOOD = {133: "the client id (hub_id) is not accepted",
                    134: "bad user name or password",
                    135: "not authorised",
                    138: "banned",
                    140: "bad authentication method"}
# getaddrinfo answers that mean "no such name" (not "the name server did not answer").
NO_SUCH_NAME = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}
# What PostgreSQL (through psycopg) says when the login, the database or the address
# can never work; anything else (refused, timed out, starting up) is waited for.
PG_FOR_GOOD = ("password authentication failed", "no password supplied",
               "does not exist", "no pg_hba.conf entry", "could not translate host name",
               "Name or service not known", "certificate", "SSL error",
               "not permitted to log in")


@dataclass(frozen=True, slots=True)
class Verdict:
    """ok: reached; fatal: a misconfiguration (`why` says it); else not reached yet."""

    ok: bool
    fatal: bool = False
    why: str = ""


OK = Verdict(True)


def resolve(host: str, what: str) -> Verdict:
    """Does `host` exist? A name server that does not answer is not a verdict."""
    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        if exc.errno in NO_SUCH_NAME:
            return Verdict(False, True, f"{what}: unknown host {host!r} (no such name in "
                                        "DNS or /etc/hosts)")
        return Verdict(False, False, f"{what}: cannot look up {host!r} yet ({exc.strerror})")
    return OK


def check_broker(url: str, *, client_id: str, username: str | None, password: str | None,
                 ca_file: str | None = None, cert_file: str | None = None,
                 key_file: str | None = None, mqtt5: bool = False,
                 timeout_s: float = 5.0) -> Verdict:
    """Connect once with the hub's identity and read the broker's answer (hub.mqtt.knock)."""
    from .mqtt.knock import knock

    parts = urlsplit(url)
    host = parts.hostname or ""
    what = f"broker {url}"
    found = resolve(host, what)
    if not found.ok:
        return found
    answer = knock(url, client_id=client_id, username=username, password=password,
                   ca_file=ca_file, cert_file=cert_file, key_file=key_file, mqtt5=mqtt5,
                   timeout_s=timeout_s)
    if answer.tls_error is not None:
        return Verdict(False, True, f"{what}: TLS refused ({answer.tls_error}): check "
                                    "ca_file, cert_file, key_file and the broker's name")
    if answer.os_error is not None:
        return Verdict(False, False, f"{what}: not reached yet ({_plain_os(answer.os_error)})")
    if answer.code is None:
        return Verdict(False, False, f"{what}: no answer to CONNECT within {timeout_s:g} s")
    if answer.code >= 128:
        if answer.code in REFUSED_FOR_GOOD:
            who = f"user {username!r}" if username else "an anonymous login"
            return Verdict(False, True, f"{what} refused the hub ({who}, client id "
                                        f"{client_id!r}): {REFUSED_FOR_GOOD[answer.code]}; "
                                        "check username, password/password_file and the "
                                        "broker's ACL")
        return Verdict(False, False, f"{what}: refused for now ({answer.reason})")
    return OK


def check_database(url: str, timeout_s: float = 5.0) -> Verdict:
    """Open one connection to the database (not the schema: migrations come later)."""
    from sqlalchemy.exc import SQLAlchemyError

    from .db.engine import make_engine, normalize_url
    from .errors import StoreError

    parts = urlsplit(normalize_url(url))
    if not parts.scheme.startswith("postgresql"):
        return OK   # a SQLite file is made on first start; nothing to wait for
    if parts.hostname:
        found = resolve(parts.hostname, f"database {safe_url(url)}")
        if not found.ok:
            return found
    try:
        engine = make_engine(url, connect_args={"connect_timeout": max(1, int(timeout_s))})
    except StoreError as exc:
        return Verdict(False, True, str(exc))
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as exc:
        return database_verdict(url, exc)
    finally:
        engine.dispose()
    return OK


def database_verdict(url: str, exc: BaseException) -> Verdict:
    """A plain sentence for a database error (never SQLAlchemy's own text and link)."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    where = f"database {safe_url(url)}"
    if url.startswith("sqlite"):
        return Verdict(False, True, f"{where}: cannot open the file ({text})")
    if any(marker in str(orig) for marker in PG_FOR_GOOD):
        return Verdict(False, True, f"{where} refused the hub: {_pg_tail(text)}")
    return Verdict(False, False, f"{where}: not reached yet ({_pg_tail(text)})")


def _pg_tail(text: str) -> str:
    # psycopg: 'connection failed: connection to server at "127.0.0.1", port 1 failed:
    # Connection refused' -> the last clause is the reason in plain words.
    tail = text.rsplit("failed: ", 1)[-1].strip() or text
    return tail.removeprefix("FATAL:").strip()


def _plain_os(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: nothing listens there yet"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    return exc.strerror or str(exc) or type(exc).__name__


def safe_url(url: str) -> str:
    """A URL without its password, for messages."""
    head, sep, tail = url.partition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, cred = head.partition("://")
    return f"{scheme}://{cred.split(':', 1)[0]}@{tail}"
