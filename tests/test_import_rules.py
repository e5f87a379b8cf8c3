"""The direction of dependence (ARCHITECTURE.md, "Components and the direction of
dependence"), checked on the source: every import of every module of the product
packages, read with `ast` (imports inside functions too, relative imports resolved,
and module names given as literal strings to importlib.import_module or __import__).

    protocol/      the standard library only
    node/          protocol (+ paho, gpiozero, smbus2)
    hub/           never node, dashboard, firmware_sim or tiengmo
    dashboard/     nothing of the project
    firmware_sim/  of the project, protocol and node only
    modem/         the standard library and pyserial only (a leaf: hub and sentinel share it)
    sentinel/      protocol and modem (+ paho): never hub, the thing it watches
    tiengmo/       the edge: anything

A module that is not there to read (a typo in the list below) fails the test too,
so the rules cannot silently check nothing.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PROJECT = frozenset({"protocol", "node", "hub", "firmware_sim", "dashboard", "tiengmo",
                     "modem", "sentinel"})
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}


def allowed(package: str, top: str) -> bool:
    """May a module of `package` import the top-level module `top`?"""
    if top == package:
        return True
    if package == "protocol":
        return top in STDLIB
    if package == "node":
        return top in STDLIB or top in {"protocol", "paho", "gpiozero", "smbus2"}
    if package == "hub":
        return top not in {"node", "dashboard", "firmware_sim", "tiengmo", "sentinel"}
    if package == "modem":
        return top in STDLIB or top == "serial"
    if package == "sentinel":
        return top in STDLIB or top in {"protocol", "modem", "paho"}
    if package == "dashboard":
        return top not in PROJECT
    if package == "firmware_sim":
        return top not in PROJECT or top in {"protocol", "node"}
    if package == "tiengmo":
        return True
    raise AssertionError(f"no rule for package {package!r}")


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(root: Path, path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) for every import in the module at `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    name = _module_name(root, path)
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = []
            if node.level:
                base = name.split(".")
                # `from . import x` in a package's __init__ means the package itself.
                drop = node.level - 1 if is_package else node.level
                base = base[: len(base) - drop] if drop else base
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            # Each imported name may be a module: `from .. import node` from hub/x.py
            # imports the top-level `node`.
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}" if module else alias.name
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name)
                       and node.func.id in {"import_module", "__import__"}))):
            yield node.lineno, node.args[0].value


def violations(root: Path, packages: frozenset[str] = PROJECT) -> list[str]:
    found = []
    for package in sorted(packages):
        files = sorted((root / package).rglob("*.py"))
        if not files:
            found.append(f"{package}/: no modules found to check")
        for path in files:
            for line, module in imports_of(root, path):
                top = module.split(".")[0]
                if top and not allowed(package, top):
                    found.append(f"{path.relative_to(root)}:{line}: {package} imports {module}")
    return found


def test_every_product_module_imports_only_what_its_package_may() -> None:
    assert violations(REPO) == []


def test_the_rules_see_real_modules() -> None:
    # Guard against a checker that passes because it reads nothing.
    hub_app = REPO / "hub" / "app.py"
    assert ("hub.api" in {m for _, m in imports_of(REPO, hub_app)})
    sim = REPO / "firmware_sim" / "village.py"
    assert any(m.startswith("node") for _, m in imports_of(REPO, sim))


BROKEN = [
    # (package, module path, source): each breaks one rule of ARCHITECTURE.md.
    ("protocol", "protocol/topics.py", "import paho.mqtt.client\n"),
    ("protocol", "protocol/topics.py", "from hub import runtime\n"),
    ("node", "node/agent.py", "import sqlalchemy\n"),
    ("node", "node/agent.py", "def f():\n    from hub.store import Store\n"),
    ("hub", "hub/app.py", "def static():\n    import dashboard\n"),
    ("hub", "hub/api/deps.py", "from ...node import agent\n"),
    ("hub", "hub/runtime.py", "from .. import firmware_sim\n"),
    ("hub", "hub/cli.py", "import importlib\nimportlib.import_module('firmware_sim.cli')\n"),
    ("hub", "hub/__init__.py", "from tiengmo.simpanel import mount\n"),
    ("dashboard", "dashboard/__init__.py", "from hub.api.deps import Viewer\n"),
    ("dashboard", "dashboard/panel.py", "import protocol\n"),
    ("firmware_sim", "firmware_sim/village.py", "from hub.runtime import Hub\n"),
    ("firmware_sim", "firmware_sim/fleet.py", "from tiengmo import broker\n"),
    ("modem", "modem/driver.py", "from hub.integrations import texts\n"),
    ("modem", "modem/driver.py", "import protocol\n"),
    ("sentinel", "sentinel/watch.py", "from hub.integrations.modem import Modem\n"),
    ("sentinel", "sentinel/runner.py", "def f():\n    import sqlalchemy\n"),
    ("hub", "hub/integrations/sms.py", "from sentinel import watch\n"),
]


@pytest.mark.parametrize(("package", "module", "source"), BROKEN,
                         ids=[f"{b[1]}:{b[2].split()[-1]}" for b in BROKEN])
def test_a_broken_rule_is_reported(tmp_path: Path, package: str, module: str,
                                   source: str) -> None:
    path = tmp_path / module
    path.parent.mkdir(parents=True, exist_ok=True)
    for parent in path.relative_to(tmp_path).parents:
        if parent.parts:
            (tmp_path / parent / "__init__.py").touch()
    path.write_text(source, encoding="utf-8")
    found = violations(tmp_path, frozenset({package}))
    assert len(found) == 1 and found[0].startswith(module), found


@pytest.mark.parametrize(("package", "module", "source"), [
    ("protocol", "protocol/x.py", "import json, tomllib\nfrom . import topics\n"),
    ("node", "node/x.py", "import paho.mqtt.client\nfrom gpiozero import Button\n"
                          "from protocol import Topics\nfrom .outbox import Outbox\n"),
    ("hub", "hub/x.py", "import fastapi\nfrom protocol import Topics\nfrom .store import S\n"),
    ("firmware_sim", "firmware_sim/x.py", "from node.agent import Agent\nimport gpiozero\n"),
    ("tiengmo", "tiengmo/x.py", "from hub.app import create_app\nimport dashboard\n"),
    ("hub", "hub/x.py", "from modem import Modem\n"),
    ("modem", "modem/x.py", "import serial, re, threading\n"),
    ("sentinel", "sentinel/x.py", "from modem import Modem\nimport paho.mqtt.client\n"
                                  "from protocol import Topics\n"),
])
def test_allowed_imports_pass(tmp_path: Path, package: str, module: str, source: str) -> None:
    path = tmp_path / module
    path.parent.mkdir(parents=True)
    (path.parent / "__init__.py").touch()
    path.write_text(source, encoding="utf-8")
    assert violations(tmp_path, frozenset({package})) == []


def _declared_distributions() -> set[str]:
    import re
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    return {re.split(r"[\s\[<>=!~;]", s, maxsplit=1)[0].lower().replace("_", "-")
            for s in specs}


def test_every_third_party_import_is_a_declared_dependency() -> None:
    # An import that works here only because something else pulled the package in
    # (pwdlib came with amqtt) breaks the day that something changes.
    from importlib.metadata import packages_distributions

    dists = packages_distributions()
    declared = _declared_distributions()
    missing = []
    for package in sorted(PROJECT):
        for path in sorted((REPO / package).rglob("*.py")):
            for line, module in imports_of(REPO, path):
                top = module.split(".")[0]
                if not top or top in STDLIB or top in PROJECT:
                    continue
                names = {d.lower().replace("_", "-") for d in dists.get(top, [top])}
                if not names & declared:
                    missing.append(f"{path.relative_to(REPO)}:{line}: {module} "
                                   f"({', '.join(sorted(names))})")
    assert missing == []
