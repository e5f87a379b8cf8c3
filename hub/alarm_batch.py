"""The alarm transaction: one batch of alarms as ONE unit of work (group commit).

In it, in this order: the alarms are correlated (a new incident's row is
inserted at once, so a race with another replica surfaces here, on its UNIQUE
corr_key, and the whole unit runs again and joins the winner's incident); each
new incident that fans out has its `sound` published by `publish` (the gongs
wait neither for the alarm rows nor for the commit's fsync); the alarm rows are
written; each published sound is recorded (its command row, and the incident's
sounded area) with them. When `store_alarm_batch` returns, all of it is
committed: only then may the alarms be acked (the caller does, after its
fan-out bookkeeping). On a retried race only the last attempt's sounds are the
batch's own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from protocol import Command

from .policy import Sound
from .store import AlarmOutcome, IncidentInfo, Repositories, Store
from .store.alarms import AlarmItem

# alarm_id -> the sound published for the new incident it opened (or confirmed)
Sounds = dict[str, tuple[Sound, Command]]
# Choose and publish a new incident's sound (the incident has an area).
Publish = Callable[[IncidentInfo], tuple[Sound, Command]]


def store_alarm_batch(store: Store, items: Sequence[AlarmItem], *, window_s: float,
                      noisy_max_fanouts: int | None, noisy_window_s: float,
                      publish: Publish | None) -> tuple[list[AlarmOutcome], Sounds]:
    """Store `items` in one transaction and sound their new incidents (see the module);
    one outcome per item, in order, and the sounds published. `publish` None (an
    observer hub) sounds nothing."""

    def unit(uow: Repositories) -> tuple[list[AlarmOutcome], Sounds]:
        sounds: Sounds = {}

        def decided(outcomes: list[AlarmOutcome]) -> None:
            if publish is None:
                return
            for out in outcomes:
                if out.fan_out and out.node_known and out.node_enabled and out.incident.area:
                    sounds[out.alarm_id] = publish(out.incident)

        outcomes = uow.alarms.record_batch(items, window_s=window_s,
                                           noisy_max_fanouts=noisy_max_fanouts,
                                           noisy_window_s=noisy_window_s, decided=decided)
        for sound, cmd in sounds.values():
            # Recorded with the alarms: a committed incident that fanned out always has
            # its sound's command row (the leader's orphan check looks for it).
            uow.commands.record(cmd, "area", sound.area, issued_by="hub")
        return outcomes, sounds

    return store.transaction(unit, urgent=True)
