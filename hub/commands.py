"""Building the commands the hub sends (one place for the hub's sounds, the operators'
and the integrations'): a fresh cmd_id each time, and an expiry on every one, so a
sound or a silence delivered late never acts on a newer situation (PROTOCOL.md rule 5).
"""

from __future__ import annotations

from protocol import Action, Command, new_id

from .policy import Sound


def build_command(action: Action, now_ms: int, expiry_s: float, *, sound: Sound | None = None,
                  incident_id: str | None = None, drill: bool | None = None,
                  duration_s: int | None = None, cmd_id: str | None = None) -> Command:
    """A new `action` command issued at `now_ms`, expiring `expiry_s` later; a `sound`
    gives a sound command its pattern, duration and priority. `cmd_id` None: a fresh one."""
    expires = now_ms + int(expiry_s * 1000)
    if sound is not None:
        return Command(cmd_id or new_id(), action, now_ms, expires, pattern=sound.pattern,
                       duration_s=sound.duration_s, priority=sound.priority,
                       incident_id=incident_id, drill=drill)
    return Command(cmd_id or new_id(), action, now_ms, expires, incident_id=incident_id,
                   duration_s=duration_s)


def sound_command(sound: Sound, now_ms: int, expiry_s: float, *,
                  incident_id: str | None, drill: bool = False,
                  cmd_id: str | None = None) -> Command:
    """A `sound` for `sound.area`; a new cmd_id every time (re-sounding restarts it) unless
    `cmd_id` is given (an incident's first sound: hub.store.ids.first_sound_id)."""
    return build_command(Action.SOUND, now_ms, expiry_s, sound=sound, incident_id=incident_id,
                         drill=drill, cmd_id=cmd_id)
