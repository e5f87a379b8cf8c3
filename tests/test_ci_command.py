"""CI runs what the README tells people to run, and that command runs every tier."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_test_command() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    after = text[text.index("Run the whole test suite"):]
    block = re.search(r"```sh\n(.*?)\n```", after, re.S)
    assert block, "README.md: no ```sh block after 'Run the whole test suite'"
    return block.group(1).strip()


def pytest_args(command: str) -> list[str]:
    last = command.split("&&")[-1]
    words = shlex.split(last)
    assert words[:3] == [".venv/bin/python", "-m", "pytest"], words
    return words[3:]


def test_ci_runs_exactly_the_readme_command() -> None:
    lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    commands = [ln for ln in lines if ln and not ln.startswith("#")]
    assert commands[-1] == readme_test_command()


def test_the_readme_command_selects_every_tier() -> None:
    args = pytest_args(readme_test_command())
    narrowing = {"-m", "-k", "--lf", "--last-failed", "-x", "--exitfirst"}
    assert not narrowing & set(args), args
    assert all(a.startswith("-") or a == "auto" or a.isdigit() for a in args), (
        f"the command names test paths, not the whole suite: {args}")
    addopts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"][
        "ini_options"]["addopts"]
    assert not narrowing & set(shlex.split(addopts)), addopts


def test_the_parse_sees_a_narrowed_command() -> None:
    assert pytest_args("python3 -m venv .venv && .venv/bin/python -m pytest -m quick") == [
        "-m", "quick"]
