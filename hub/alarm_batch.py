"""The alarm transaction: one batch of alarms as ONE unit of work (group commit).

In it, in this order: the alarms are correlated (a new incident's row is
inserted at once, so a race with another replica surfaces here, on its UNIQUE
corr_key, and the whole unit runs again and joins the winner's incident); each
new incident that fans out has its `sound` published by `publish` (the gongs
wait neither for the alarm rows nor for the commit's fsync); the alarm rows are
written; each published sound is recorded (its command row, and the incident's
sounded area) with them. When `store_alarm_batch` returns, all of it is
committed: only then may the alarms be acked (the caller does, after its
fan-out bookkeeping).

A sound is only ever about an incident the database holds, or will hold
(PROTOCOL.md rules 2-4, docs/protocol-notes.md "Incident ids"): incident ids
and the first sound's cmd_id are derived from the correlation key and window
(hub.store.ids), and every alarm whose incident sounded before its commit is
pinned (hub.correlation.Memory) with its first receipt time. A retried
transaction stores it under that incident and publishes nothing new; so does
the node's re-send once the database can be written again. While the database
cannot be written (the last write failed), new incidents are decided in memory
and sounded first, and storing is tried after: no `received` ack until stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from sqlalchemy.exc import DBAPIError, IntegrityError

from protocol import Command

from .correlation import Memory, Pin, memory_for, memory_incident
from .errors import StoreError
from .policy import Sound
from .store import AlarmInfo, AlarmOutcome, IncidentInfo, Repositories, Store
from .store.alarms import AlarmItem, corr_key
from .store.phone import PhoneAlarm

log = logging.getLogger("tiengmo.hub.alarm_batch")

# alarm_id -> the sound published for the new incident it opened (or confirmed)
Sounds = dict[str, tuple[Sound, Command]]
# Choose and publish a new incident's sound (the incident has an area).
Publish = Callable[[IncidentInfo], tuple[Sound, Command]]
# Called once the batch's sounds are published, before its bookkeeping (FanOut.settle).
Settle = Callable[[], None]


def store_alarm_batch(store: Store, items: Sequence[AlarmItem], *, window_s: float,
                      noisy_max_fanouts: int | None, noisy_window_s: float,
                      publish: Publish | None,
                      memory: Memory | None = None,
                      late: frozenset[str] = frozenset(),
                      settle: Settle | None = None) -> tuple[list[AlarmOutcome], Sounds]:
    """Store `items` in one transaction and sound their new incidents (see the module);
    one outcome per item, in order, and the sounds published (now or before, for an
    alarm decided in memory). `publish` None (an observer hub) sounds nothing; nor does
    an alarm of `late` (too old: hub.freshness), decided in memory or not. Raises
    when the batch could not be stored: nothing of it is acked then."""
    mem = memory if memory is not None else memory_for(store)
    foreign = {i: pin for i, (n, a, _) in enumerate(items)
               if (pin := mem.pinned_to_another(n, a.alarm_id)) is not None}
    if foreign:
        # Another node's alarm_id, decided in memory and not yet stored: refused here
        # as the stored row would refuse it, never stored or pinned as this node's.
        rest = [it for i, it in enumerate(items) if i not in foreign]
        stored, sounds = (store_alarm_batch(
            store, rest, window_s=window_s, noisy_max_fanouts=noisy_max_fanouts,
            noisy_window_s=noisy_window_s, publish=publish, memory=mem, late=late,
            settle=settle)
            if rest else ([], {}))
        it = iter(stored)
        return [_foreign(items[i], foreign[i]) if i in foreign else next(it)
                for i in range(len(items))], sounds
    window_ms = int(window_s * 1000)
    pins = mem.pinned([a.alarm_id for _, a, _ in items])
    # A pinned alarm keeps its first receipt: the window it was decided in.
    items = [(n, a, pins[a.alarm_id].received_ms if a.alarm_id in pins else r)
             for n, a, r in items]
    was_down = mem.db_down
    if publish is not None and was_down:
        # The last write failed: sound first, as correlation would decide, then try.
        _decide_in_memory(store, mem, items, window_ms, publish, late, settle)

    def unit(uow: Repositories) -> tuple[list[AlarmOutcome], Sounds]:
        sounds: Sounds = {}
        now_pins = mem.pinned([a.alarm_id for _, a, _ in items])

        def decided(outcomes: list[AlarmOutcome]) -> None:
            if publish is None:
                return
            sounded = False
            for out, (_, _, received_ms) in zip(outcomes, items, strict=True):
                if not (out.fan_out and out.node_known and out.node_enabled
                        and out.incident.area):
                    continue
                prior = mem.sound_of(out.incident_id)
                if prior is not None:
                    sounds[out.alarm_id] = prior   # published before: never again
                    continue
                sounds[out.alarm_id] = sent = publish(out.incident)
                sounded = True
                # Pinned before the commit: a retry, or the node's re-send after a
                # failed commit, is stored under this very incident.
                mem.sounded(out, Pin(out.incident_id, received_ms, out.incident.opened_ms,
                                     sent, out.alarm.node_id))
            if sounded and settle is not None:
                settle()   # the gongs first: the broker has the sounds, then the rows

        outcomes = uow.alarms.record_batch(
            items, window_s=window_s, noisy_max_fanouts=noisy_max_fanouts,
            noisy_window_s=noisy_window_s, decided=decided, late=late,
            pinned={a: (p.incident_id, mem.sound_of(p.incident_id) is not None)
                    for a, p in now_pins.items()})
        for sound, cmd in sounds.values():
            # Recorded with the alarms: a committed incident that fanned out always has
            # its sound's command row (the leader's orphan check looks for it).
            uow.commands.record(cmd, "area", sound.area, issued_by="hub")
        return outcomes, sounds

    def once() -> tuple[list[AlarmOutcome], Sounds]:
        with store.unit(urgent=True) as uow:
            return unit(uow)

    try:
        try:
            result = once()
        except IntegrityError:
            result = store.transaction(unit, urgent=True)   # a race: decide again
        except StoreError:
            # The store fails fast (another writer found the database failing a moment
            # ago): nothing was tried, and the gongs must not wait for the next probe.
            mem.failed()
            if publish is not None:
                _decide_in_memory(store, mem, items, window_ms, publish, late, settle)
            raise
        except DBAPIError as exc:
            mem.failed()
            if publish is not None:
                # Not written (the database is down, full, locked): the gongs first.
                _decide_in_memory(store, mem, items, window_ms, publish, late, settle)
            if was_down:
                # Still down: no back-off loop holding the alarm lane (other hamlets'
                # alarms wait behind it); the node re-sends until acked.
                raise StoreError(f"database still unavailable: {exc.orig}") from exc
            # One retry of this batch at once (a failed commit is often a moment's
            # trouble); the store's health would refuse it as too soon after the failure
            # (hub.store.health: fail fast), so this retry is its probe.
            store.db.health.retry_now()
            result = store.transaction(unit, urgent=True)
    except (DBAPIError, StoreError):
        mem.failed()
        raise
    mem.stored(result[0])
    return result


def _decide_in_memory(store: Store, mem: Memory, items: Sequence[AlarmItem], window_ms: int,
                      publish: Publish, late: frozenset[str] = frozenset(),
                      settle: Settle | None = None) -> None:
    """Sound each not yet pinned alarm that opens an incident, decided without the
    database (hub.correlation.Memory.decide), and pin it to that incident. A late
    alarm is only ever stored (as late): it sounds nothing, database or not."""
    for node_id, alarm, received_ms in items:
        if alarm.alarm_id in mem.pins or alarm.alarm_id in late:
            continue
        node = mem.node(node_id)
        if node is None and isinstance(alarm, PhoneAlarm):
            node = (alarm.area, True, True)   # a registered household's hamlet
        if node is None:
            try:   # reads may still work while writes fail
                info = store.nodes.get(node_id)
            except Exception:   # the database is failing: nothing known
                info = None
            if info is None:
                log.warning("alarm %s from %s: database unwritable and the node unknown "
                            "here; not sounded until stored", alarm.alarm_id, node_id)
                continue
            node = (info.area, info.registered, info.registered and info.enabled)
            mem.learn_node(node_id, *node)
        area, known, enabled = node
        if not (known and enabled) or area is None:
            continue   # flagged alarms never sound
        key = corr_key(alarm.kind.value, area, node_id, False)
        inc_id, opened_ms, new = mem.decide(key, received_ms, window_ms,
                                            lambda i: _known_closed(store, i))
        if not new:
            mem.pin(alarm.alarm_id, Pin(inc_id, received_ms, opened_ms, None, node_id))
            continue
        inc = memory_incident(inc_id, alarm.kind.value, area, node_id, opened_ms)
        try:
            sent = publish(inc)
        except Exception:   # the store attempt below still runs
            log.exception("could not sound incident %s decided in memory", inc_id)
            continue
        mem.pin(alarm.alarm_id, Pin(inc_id, received_ms, opened_ms, sent, node_id))
        log.warning("BÁO ĐỘNG / ALARM %s from %s sounded as incident %s before it could "
                    "be stored (database unwritable)", alarm.kind.value, node_id, inc_id)
    if settle is not None:
        settle()   # then the store is tried: the broker has the sounds first


def _foreign(item: AlarmItem, pin: Pin) -> AlarmOutcome:
    """The refusal of an alarm whose id `pin` binds to another node (nothing written)."""
    node_id, alarm, received_ms = item
    inc = memory_incident(pin.incident_id, alarm.kind.value, "", pin.node_id, pin.opened_ms)
    info = AlarmInfo(alarm_id=alarm.alarm_id, node_id=node_id, kind=alarm.kind.value,
                     pressed_ms=alarm.ts_ms, received_ms=received_ms,
                     source=alarm.source.value, button=alarm.button, attempts=alarm.attempt,
                     copies=1, incident_id=pin.incident_id, area=None, unknown_node=False,
                     disabled_node=False, fanout_held=False, drill=False, cancelled=False,
                     cancelled_ms=None)
    return AlarmOutcome(alarm.alarm_id, pin.incident_id, False, False, True, True, False,
                        inc, info, foreign=True)


def _known_closed(store: Store, incident: str) -> bool:
    """The database (if it can still be read) holds `incident`, resolved or cancelled: an
    operator closed it before the outage, or another replica did, unknown to this hub."""
    try:
        inc = store.incidents.get(incident)
    except Exception:   # unreadable too: nobody could have closed it meanwhile
        return False
    return inc is not None and not inc.is_open
