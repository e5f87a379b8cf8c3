"""hub/commands.py: the one place commands are built (the hub's sounds, operators', the
integrations'): a fresh id each time, and every command expires."""

from __future__ import annotations

import protocol
from hub.commands import build_command, sound_command
from hub.policy import Sound

SOUND = Sound("bach-thong/vi-huong/na-sang", protocol.Pattern("fire", ((500, 500),)), 30, 1)


def test_a_sound_carries_its_pattern_and_expires() -> None:
    cmd = sound_command(SOUND, 1_000, 60.0, incident_id=protocol.new_id())
    assert cmd.action is protocol.Action.SOUND and cmd.expires_ts_ms == 61_000
    assert (cmd.pattern, cmd.duration_s, cmd.priority) == (SOUND.pattern, 30, 1)
    assert cmd.drill is False
    assert sound_command(SOUND, 1_000, 60.0, incident_id=None).cmd_id != cmd.cmd_id


def test_every_other_command_expires_too_and_carries_only_its_fields() -> None:
    for action in (protocol.Action.SILENCE, protocol.Action.PING, protocol.Action.TEST):
        cmd = build_command(action, 5_000, 2.5, duration_s=3 if action is protocol.Action.TEST
                            else None)
        assert cmd.expires_ts_ms == 7_500 and cmd.pattern is None
        # what goes on the wire is valid for its action (rule 5: every command expires)
        assert protocol.decode(protocol.Command, protocol.encode(cmd)) == cmd
