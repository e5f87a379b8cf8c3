"""The hub's, Mosquitto's and the node agent's units run before other work (Nice=-10,
CPUWeight=1000; docs/alarm-lane.md, "A busy machine") wherever the machine allows it,
and still start where it does not.

systemd refuses to start a unit whose `Nice=` it cannot apply (status 201/NICE), and an
unprivileged container cannot lower a nice (CAP_SYS_NICE is only the host's). So each
role first asks the machine, through the one probe of the `tiengmo_priority` role, and
writes `Nice=` only where it worked; `CPUWeight=` is harmless everywhere. Here: the probe
run as root on this machine and inside an unprivileged user namespace (as such a container is), and
both templates rendered by Ansible for either answer. The applied site
(tests/ansible/test_site.py) checks the running units' threads.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ansible import support

PROBE_NAME = "Find whether this machine lets a service run at a negative nice"
ROLES = {"tiengmo_hub": ("tasks/main.yml", "tiengmo-hub.service.j2", "tiengmo_hub"),
         "tiengmo_broker": ("tasks/limits.yml", "limits.conf.j2", "tiengmo_broker"),
         "tiengmo_node": ("tasks/service.yml", "tiengmo-node.service.j2", "tiengmo_node")}


def tasks_of(role: str, path: str) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = yaml.safe_load(
        (support.ANSIBLE_DIR / "roles" / role / path).read_text())
    return tasks


def asks_the_probe(role: str) -> bool:
    """The role asks tiengmo_priority, with its own unit's nice, before its unit's template."""
    tasks = tasks_of(role, ROLES[role][0])
    [ask] = [i for i, t in enumerate(tasks)
             if t.get("ansible.builtin.include_role", {}).get("name") == "tiengmo_priority"]
    [unit] = [i for i, t in enumerate(tasks)
              if t.get("ansible.builtin.template", {}).get("src") == ROLES[role][1]]
    nice = tasks[ask]["vars"]["tiengmo_priority_nice"]
    return ask < unit and nice == "{{ " + ROLES[role][2] + "_nice }}"


def test_both_roles_ask_alike_and_the_answer_tells_the_two_machines_apart() -> None:
    assert [role for role in ROLES if not asks_the_probe(role)] == []
    [probe] = [t for t in tasks_of("tiengmo_priority", "tasks/main.yml")
               if t.get("name", "").startswith(PROBE_NAME)]
    argv = shlex.split(str(probe["ansible.builtin.command"]))
    allowed = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert allowed.returncode == 0, allowed.stderr       # root on a machine of its own
    contained = subprocess.run(["unshare", "--user", "--map-root-user", *argv],
                               capture_output=True, text=True, timeout=30)
    assert contained.returncode != 0 and "Permission denied" in contained.stderr, contained


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("probe_rc", [0, 1], ids=["allowed", "refused"])
def test_nice_is_written_only_where_the_machine_allows_it(tmp_path: Path, role: str,
                                                           probe_rc: int) -> None:
    _, template, _ = ROLES[role]
    extra: dict[str, object] = {"__tiengmo_priority_probe": {"rc": probe_rc}}
    if role == "tiengmo_hub":
        extra["tiengmo_hub_id"] = "hub-test-1"
    elif role == "tiengmo_node":
        extra |= {"tiengmo_node_id": "node-test-1", "tiengmo_node_gpio_group": "gpio"}
    else:   # computed from the inventory's logins in the role's vars
        extra |= {"__tiengmo_broker_nofile": 4200, "__tiengmo_broker_logins": 52}
    lines = support.render_template(tmp_path, role, template, **extra).splitlines()
    assert "CPUWeight=1000" in lines
    assert ("Nice=-10" in lines) is (probe_rc == 0)
    assert not [line for line in lines if line.startswith("Nice=") and line != "Nice=-10"]
    assert "" not in lines[lines.index("CPUWeight=1000") - 2:lines.index("CPUWeight=1000")]
