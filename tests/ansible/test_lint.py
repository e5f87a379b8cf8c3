"""Every playbook parses, and the roles pass ansible-lint's production profile."""

from __future__ import annotations

import subprocess

import pytest

from tests.ansible import support

pytestmark = pytest.mark.timeout(300)


def test_ansible_lint_production_profile_passes() -> None:
    proc = subprocess.run([support.tool("ansible-lint"), "--profile", "production", "--offline",
                           "--nocolor", "."], cwd=support.ANSIBLE_DIR, env=support.ansible_env(),
                          capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-4000:]
    assert "Profile 'production' was required, and it passed" in proc.stdout + proc.stderr


@pytest.mark.parametrize("playbook", support.PLAYBOOKS)
def test_playbook_passes_syntax_check(playbook: str) -> None:
    proc = subprocess.run([support.tool("ansible-playbook"), "--syntax-check",
                           "-i", "inventory/demo/hosts.yml", playbook],
                          cwd=support.ANSIBLE_DIR, env=support.ansible_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
