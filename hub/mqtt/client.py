"""The hub's one MQTT client (hub.mqtt.client and its hub.mqtt.puback are the ONLY hub
modules that import paho).

Every MQTT connection the hub opens is an `MqttClient`: the protocol link
(hub.link), the dynamic-security control session (hub.dynsec) and the Home
Assistant bridge (hub.integrations.homeassistant). So all of them get the same:

- construction: MQTT 3.1.1 (or 5, for shared subscriptions), client id,
  credentials (explicit, else from the URL), TLS with the CA and the client
  certificate and key (mutual TLS), the Last Will set before any connect,
  TCP_NODELAY (alarms are one small packet: Nagle would only delay them);
- a refused CONNACK is not a connection: nothing is subscribed or published,
  `connected` stays clear, and the refusal is logged and reported (`Refused`,
  `refused`) with the broker's reason and its code;
- a client is `connected` once the broker confirmed the subscriptions (SUBACK)
  and the birth, if any, is out; it renews both after every reconnect;
- reconnects wait `protocol.timing.backoff_s` (capped doubling with jitter that
  only shortens), in float seconds;
- paho's callbacks only hand `MqttEvent`s to `on_event`, which must not block
  (put them on a queue); the work happens on the user's own threads.

A second connection with its own id and subscriptions is one more instance:
    MqttClient(replace(link.options, username=f"{hub_id}-alarms", password=...),
               f"{hub_id}-alarms", subscriptions=[(topic, 1)], on_event=alarm_queue.put)
It needs a broker login of its own (as the bridge's `<hub_id>-ha`): the production
broker sets `use_username_as_clientid`, so two connections with one login would
take each other's session over and over.

What paho-mqtt 2.2 does that shapes this module (read in its source; upstream
issues eclipse-paho/paho.mqtt.python#195, #218 and #307 describe the same):
- `reconnect_delay_set(min_delay, max_delay)` is annotated `int` but its wait
  is plain float arithmetic, and it doubles without jitter; so before every wait
  (each is preceded by `on_disconnect` or `on_connect_fail` on its thread) this
  module sets both bounds to the next `backoff_s` delay, which paho then waits
  exactly. paho resets its own delay only on an accepted CONNACK; so do we.
- A failed *first* connect inside `loop_start()` waits twice before the second
  try; the first try is therefore made in `start()`, on the caller's thread (which
  also gives the OSError or TLS error text, which `on_connect_fail` does not
  carry), so `start()` blocks for one attempt: at most paho's 5 s connect timeout.
- After a refused CONNACK paho retries the same credentials for ever; with the
  back-off that is what the hub wants (an operator may fix the broker's side).
- paho sleeps its reconnect wait in slices of up to 1 s, so `stop()` during a
  wait can take up to a second.
- Without paho's own network thread, `publish()` from another thread writes to
  the socket itself, racing the loop: hence `loop_start()`, not a loop of ours.
- Every PUBACK costs paho a `ReasonCode` and a `Properties`, even on MQTT 3.1.1
  whose PUBACK is a packet id: 10 µs of its thread per `received` ack. The client is
  hub.mqtt.puback's, which reads that packet id itself (pinned to paho 2.2.0).
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from protocol.timing import backoff_s, wall_ms

from .puback import Client
from .types import (
    Inbound,
    Lost,
    MqttError,
    MqttEvent,
    MqttOptions,
    MqttRefused,
    Outgoing,
    Ready,
    Refused,
    parse_broker_url,
)

log = logging.getLogger("tiengmo.hub.mqtt")


class Published:
    """A publish handed to paho; `wait` blocks until the broker has it (QoS 1)."""

    def __init__(self, info: Any) -> None:
        self._info = info

    def wait(self, timeout: float) -> bool:
        try:
            self._info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            return False
        return self.done

    @property
    def done(self) -> bool:
        """The broker has it (QoS 1: its PUBACK came)."""
        return bool(self._info.is_published())


def _ignore(event: MqttEvent) -> None:
    """The default `on_event`."""


class MqttClient:
    """One MQTT connection; see the module docstring for what it guarantees."""

    def __init__(self, options: MqttOptions, client_id: str, *,
                 subscriptions: Sequence[tuple[str, int]] = (),
                 will: Outgoing | None = None,
                 birth: Callable[[], Outgoing] | None = None,
                 on_event: Callable[[MqttEvent], None] = _ignore,
                 name: str = "MQTT client", hint: str = "",
                 clock_ms: Callable[[], int] = wall_ms,
                 rng: random.Random | None = None) -> None:
        self.options = options
        self.client_id = client_id
        self.name = name
        self._hint = hint
        url = parse_broker_url(options.broker_url)
        self.host, self.port = url.host, url.port
        self._subs = list(subscriptions)
        self._birth = birth
        self._on_event = on_event
        self._clock_ms = clock_ms
        self._rng = rng
        # Set once connected AND subscribed (the SUBACK came back) AND the birth is out.
        self.connected = threading.Event()
        self._settled = threading.Event()   # ready or refused: `connect` may stop waiting
        self.connects = 0                   # accepted CONNACKs
        self.refusals = 0                   # refused CONNACKs
        self.refused: Refused | None = None  # the last refusal, until a connect is accepted
        self.last_error: str | None = None  # why the last try failed short of a CONNACK
        self._first_error: str | None = None  # why start()'s own try failed
        self.retry_delays: list[float] = []  # the last waits chosen, newest last (for tests)
        self._attempt = 0
        self._session_up = False            # CONNACK accepted (maybe before SUBACK)
        self._stopping = False
        self._started = False
        self._sub_mid = -1
        # A hub's sessions are clean: what it must know lives in its database, and
        # retained messages re-arrive on subscribe.
        if options.mqtt5:
            c = Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                       protocol=MQTTProtocolVersion.MQTTv5)
        else:
            c = Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                       protocol=MQTTProtocolVersion.MQTTv311, clean_session=True)
        self._client = c
        user = options.username or url.username
        if user:
            c.username_pw_set(user, options.password or url.password)
        if url.tls or options.ca_file:
            try:
                c.tls_set(ca_certs=options.ca_file, certfile=options.cert_file,
                          keyfile=options.key_file, cert_reqs=ssl.CERT_REQUIRED,
                          tls_version=ssl.PROTOCOL_TLS_CLIENT)
            except (OSError, ssl.SSLError) as exc:
                raise MqttError(f"{name}: TLS setup failed: {exc}") from None
        if will is not None:
            c.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        c.max_queued_messages_set(0)   # 0 = unbounded: nothing the hub publishes is dropped
        self._set_wait(options.reconnect_min_s)
        c.on_connect = self._on_connect
        c.on_connect_fail = self._on_connect_fail
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        c.on_socket_open = self._on_socket_open

    # ---- lifecycle -------------------------------------------------------

    def start(self) -> None:
        """Try once now (on this thread), then paho's thread keeps the connection up."""
        if self._started:
            return
        self._started = True
        self._stopping = False
        self._settled.clear()
        self.last_error = self._first_error = None
        kw: dict[str, Any] = {"clean_start": True} if self.options.mqtt5 else {}
        self._client.connect_async(self.host, self.port, keepalive=self.options.keepalive_s,
                                   **kw)
        try:
            self._client.reconnect()
        except OSError as exc:   # ssl.SSLError is one: a bad CA or certificate
            self.last_error = self._first_error = f"{type(exc).__name__}: {exc}"
            log.warning("%s: broker %s:%d unreachable (%s); retrying", self.name, self.host,
                        self.port, self.last_error)
            self._schedule_retry()
        self._client.loop_start()

    def connect(self, timeout: float) -> None:
        """`start` and wait until connected; raises MqttError (MqttRefused) with the reason."""
        self.start()
        if self._first_error is not None:
            self.stop()
            raise MqttError(f"broker {self.host}:{self.port} unreachable: {self._first_error}")
        if not self._settled.wait(timeout) or not self.connected.wait(0):
            refused, why = self.refused, self.last_error
            self.stop()
            if refused is not None:
                raise MqttRefused(f"broker {self.host}:{self.port} refused {self.name} "
                                  f"({self.client_id!r}): {refused.reason}", refused.reason,
                                  refused.code)
            raise MqttError(f"broker {self.host}:{self.port}: {self.name} not connected "
                            f"within {timeout} s" + (f" ({why})" if why else ""))

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def stop(self, farewell: Outgoing | None = None, timeout: float = 5.0) -> bool:
        """Publish `farewell` (a retained death, say) ourselves, then DISCONNECT.

        True when the farewell reached the broker (or none was asked for); offline,
        the broker's Will speaks for us.
        """
        if not self._started:
            return farewell is None
        self._stopping = True
        ok = farewell is None
        if farewell is not None and self._session_up:
            ok = self.publish(farewell.topic, farewell.payload, farewell.qos,
                              farewell.retain).wait(timeout)
            if not ok:
                log.warning("%s: farewell on %s not confirmed by the broker", self.name,
                            farewell.topic)
        self._client.disconnect()
        self._client.loop_stop()
        self.connected.clear()
        self._session_up = False
        self._started = False
        return ok

    # ---- publishing ------------------------------------------------------

    def publish(self, topic: str, payload: bytes | str, qos: int = 1,
                retain: bool = False) -> Published:
        """Hand one message to paho (thread-safe): sent now, or after the next reconnect."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.error("%s: publish to %s failed: %s", self.name, topic,
                      mqtt.error_string(info.rc))
        return Published(info)

    # ---- reconnect back-off (paho's thread, before each of its waits) -----

    def _set_wait(self, delay_s: float) -> None:
        # paho annotates int; its wait is float arithmetic (module docstring).
        self._client.reconnect_delay_set(delay_s, delay_s)  # type: ignore[arg-type]

    def _schedule_retry(self) -> None:
        self._attempt += 1
        o = self.options
        delay = backoff_s(self._attempt, o.reconnect_min_s, o.reconnect_max_s,
                          o.reconnect_jitter, self._rng)
        self.retry_delays = [*self.retry_delays[-19:], delay]
        self._set_wait(delay)

    # ---- paho callbacks (paho's thread: hand over, never work) ----------

    def _on_socket_open(self, client: Any, userdata: Any, sock: Any) -> None:
        with contextlib.suppress(OSError, AttributeError):  # not a TCP socket
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        log.debug("%s: connecting to %s:%d failed", self.name, self.host, self.port)
        if not self._stopping:
            self._schedule_retry()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    props: Any) -> None:
        if reason.is_failure:
            # Not a connection: paho drops the socket, on_disconnect picks the wait.
            refused = Refused(str(reason), int(reason.value))
            first = self.refused != refused
            self.refusals += 1
            self.refused = refused
            log.log(logging.ERROR if first else logging.DEBUG,
                    "%s: broker %s:%d refused the connection as %r: %s (code %d)%s",
                    self.name, self.host, self.port, self.client_id, refused.reason,
                    refused.code, self._hint)
            self._settled.set()
            self._on_event(refused)
            return
        self._attempt = 0
        self.connects += 1
        self.refused = None
        self._session_up = True
        log.info("%s: connected to %s:%d as %r (connection #%d)", self.name, self.host,
                 self.port, self.client_id, self.connects)
        if not self._subs:
            self._up(())
            return
        if self.options.mqtt5:
            _, self._sub_mid = client.subscribe([(t, SubscribeOptions(qos=q))
                                                 for t, q in self._subs])
        else:
            _, self._sub_mid = client.subscribe(self._subs)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reasons: Any,
                      props: Any) -> None:
        if mid != self._sub_mid:
            return
        refused = tuple(t for (t, _), r in zip(self._subs, reasons, strict=False)
                        if r.is_failure)
        if refused:
            # The broker's ACL refused a topic: what arrives on it would be lost silently.
            log.error("%s: broker refused %d of %d subscriptions (%s): check its ACL%s",
                      self.name, len(refused), len(self._subs), ", ".join(refused),
                      self._hint)
        self._up(refused)

    def _up(self, refused: tuple[str, ...]) -> None:
        # Ready only now: a message published before the SUBACK would miss us, and
        # the birth tells others that we listen.
        if self._birth is not None:
            b = self._birth()
            self._client.publish(b.topic, b.payload, qos=b.qos, retain=b.retain)
        self.connected.set()
        self._settled.set()
        self._on_event(Ready(self.connects, refused))

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       props: Any) -> None:
        was_ready = self.connected.is_set()
        was_up = self._session_up
        self.connected.clear()
        self._session_up = False
        if self._stopping:
            return
        self._schedule_retry()
        if not was_up and self.refused is None:
            # Closed before any CONNACK: a TLS handshake the broker rejected after all
            # (a missing client certificate shows here), or a broker that hangs up.
            why = f"connection closed before CONNACK ({reason})"
            log.log(logging.WARNING if why != self.last_error else logging.DEBUG,
                    "%s: broker %s:%d: %s; retrying", self.name, self.host, self.port, why)
            self.last_error = why
        if was_ready:
            log.warning("%s: lost the broker %s:%d (%s); reconnecting with back-off",
                        self.name, self.host, self.port, reason)
        if was_up:
            self._on_event(Lost(str(reason)))

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self._on_event(Inbound(msg.topic, bytes(msg.payload), bool(msg.retain),
                               self._clock_ms()))
