"""The broker logins a hub uses besides its own (its own is its hub id).

Here, with the standard library only, because the generators of the broker's access
(tiengmo.dynsec_config, tiengmo.acl) run on the control machine, where the hub's
dependencies (paho) need not be installed; the Ansible roles spell the same suffix
(`~ '-alarms'`, ansible/roles/tiengmo_controller/vars and tiengmo_broker/vars).
"""

from __future__ import annotations

# The alarm lane's own MQTT connection (hub.link, docs/alarm-lane.md). The production
# broker sets `use_username_as_clientid`, so a second connection needs a login of its
# own, or the two would take each other's session over; its client id is this login.
ALARM_SUFFIX = "-alarms"


def alarm_login(hub_id: str) -> str:
    """The login (and client id) of hub `hub_id`'s alarm connection."""
    return f"{hub_id}{ALARM_SUFFIX}"
