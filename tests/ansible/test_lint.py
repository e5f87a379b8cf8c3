"""Every playbook parses, and the roles pass ansible-lint's production profile."""

from __future__ import annotations

import os

import pytest

from tests.ansible import support

pytestmark = pytest.mark.timeout(300)


def test_ansible_lint_production_profile_passes() -> None:
    proc = support.run_tool("ansible-lint", "--profile", "production", "--offline", "--nocolor",
                            ".", timeout=280)
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-4000:]
    assert "Profile 'production' was required, and it passed" in proc.stdout + proc.stderr


@pytest.mark.parametrize("playbook", support.PLAYBOOKS)
def test_playbook_passes_syntax_check(playbook: str) -> None:
    proc = support.run_tool("ansible-playbook", "--syntax-check", "-i",
                            "inventory/demo/hosts.yml", playbook)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ansible_runs_when_the_suites_stdin_is_non_blocking() -> None:
    """Chromium, among the suite's children, can leave the stdin it shares non-blocking;
    Ansible then refuses to start. The tools get their own stdin (a CI run failed so)."""
    read, write = os.pipe()
    saved = os.dup(0)
    try:
        os.set_blocking(read, False)
        os.dup2(read, 0)
        proc = support.run_tool("ansible-playbook", "--version")
    finally:
        os.dup2(saved, 0)
        for fd in (saved, read, write):
            os.close(fd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ansible-playbook [core" in proc.stdout
