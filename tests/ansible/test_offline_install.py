"""Nothing on a site machine reaches a package index: every pip the roles run installs
with --no-index from the wheelhouse the control machine built (docs/technician.md).

A lint over the roles' tasks as Ansible reads them (YAML, the command's argv or cmd,
Jinja expressions included as text); tests/ansible/test_hub_https.py installs the hub
that way for real.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.ansible import support

ROLES = support.ANSIBLE_DIR / "roles"
COMMANDS = {"ansible.builtin.command", "ansible.builtin.shell", "command", "shell"}
PIP_MODULES = {"ansible.builtin.pip", "pip"}


def tasks(node: Any) -> Iterator[dict[str, Any]]:
    """Every task in a task file, blocks opened."""
    if isinstance(node, list):
        for item in node:
            yield from tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in ("block", "rescue", "always"):
            if key in node:
                yield from tasks(node[key])


def role_tasks(role: str | None = None) -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in sorted(ROLES.glob(f"{role or '*'}/tasks/*.yml")):
        for task in tasks(yaml.safe_load(path.read_text()) or []):
            found.append((path, task))
    return found


def command_text(task: dict[str, Any]) -> str | None:
    for module in COMMANDS:
        if module in task:
            args = task[module]
            if isinstance(args, str):
                return args
            argv = args.get("argv")
            return " ".join(map(str, argv)) if isinstance(argv, list) else str(
                argv if argv is not None else args.get("cmd", ""))
    return None


def pip_installs(role: str | None = None) -> list[tuple[Path, str, dict[str, Any]]]:
    out = []
    for path, task in role_tasks(role):
        text = command_text(task)
        if text and "pip" in text and re.search(r"\binstall\b", text):
            out.append((path, text, task))
    return out


def test_every_pip_install_in_the_roles_is_offline() -> None:
    installs = pip_installs()
    roles = {p.parts[-3] for p, _, _ in installs}
    assert {"tiengmo_hub", "tiengmo_node", "tiengmo_sentinel"} <= roles
    for path, text, _ in installs:
        assert "--no-index" in text, f"{path}: pip install without --no-index: {text}"
        assert "--find-links" in text and "wheelhouse" in text, f"{path}: {text}"


def test_no_role_uses_the_pip_module() -> None:
    # ansible.builtin.pip would reach the index unless told otherwise on every call.
    used = [(p, t.get("name")) for p, t in role_tasks() if PIP_MODULES & set(t)]
    assert not used


def test_the_hub_installs_from_its_own_wheelhouse_and_ignores_pip_configuration() -> None:
    [(_, text, task)] = pip_installs("tiengmo_hub")
    assert "tiengmo_hub_wheelhouse" in text and "[hub]" in text
    # A pip.conf on the hub naming an index (or an extra one) must not count.
    assert task["environment"]["PIP_CONFIG_FILE"] == "/dev/null"
    defaults = yaml.safe_load((ROLES / "tiengmo_hub/defaults/main.yml").read_text())
    assert defaults["tiengmo_hub_wheelhouse_src"].endswith("/wheelhouse-hub")
    assert "tiengmo_hub_use_index" not in defaults


def test_the_controller_builds_the_hubs_platform_wheels() -> None:
    builds = [command_text(t) or "" for _, t in role_tasks("tiengmo_controller")]
    hub = [b for b in builds if "build-wheelhouse.sh" in b and "wheelhouse-hub" in b]
    assert len(hub) == 1 and hub[0].rstrip().endswith(" hub")
