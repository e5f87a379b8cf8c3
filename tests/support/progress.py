"""Progress lines from long fixtures (the Debian root, the Ansible applies), shown at once.

pytest captures a test's output until it ends, and a fixture that builds a Debian
root for minutes would leave the run silent that long (CI gives up on a silent job).
`say` writes past the capture, also from an xdist worker (whose stderr is the
terminal's). tests/conftest.py binds the running config.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_config: Any = None
EVERY_S = 30.0


def bind(config: Any) -> None:
    global _config
    _config = config


def say(message: str) -> None:
    line = f"[{time.strftime('%H:%M:%S')}] {message}\n"
    capture = _config.pluginmanager.getplugin("capturemanager") if _config else None
    if capture is None:
        sys.stderr.write(line)
        sys.stderr.flush()
        return
    with capture.global_and_fixture_disabled():
        sys.stderr.write(line)
        sys.stderr.flush()


def last_line(log: Path, marker: str = "") -> str:
    """The last non-empty line of `log` (that starts with `marker`), shortened."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        if line.strip() and line.startswith(marker):
            return line.strip()[:120]
    return ""


def wait_saying(proc: subprocess.Popen[Any], what: str, log: Path, timeout: float,
                marker: str = "") -> int:
    """Wait for `proc`, saying every EVERY_S seconds how long `what` has run and the
    last line of its log; kill it after `timeout` seconds."""
    start = time.monotonic()
    say(f"{what}: started")
    while True:
        try:
            code = proc.wait(timeout=EVERY_S)
        except subprocess.TimeoutExpired:
            elapsed = time.monotonic() - start
            if elapsed > timeout:
                proc.kill()
                proc.wait()
                raise
            say(f"{what}: {elapsed:.0f} s so far ... {last_line(log, marker)}")
            continue
        say(f"{what}: done in {time.monotonic() - start:.0f} s (exit {code})")
        return code
