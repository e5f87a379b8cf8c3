"""The Debian root of the Ansible apply is built once per set of inputs, under a lock.

debootstrap itself is replaced here by a tiny tarball maker (tests/ansible/test_apply.py
runs the real one); what is tested is the cache: its name follows its inputs, two
concurrent runs build it once, and a root is unpacked from it.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.ansible import support


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.delenv("TIENGMO_ROOTFS_CACHE", raising=False)
    monkeypatch.setenv("TIENGMO_ROOTFS_CACHE_DIR", str(folder))
    return folder


def test_the_cache_is_named_by_its_inputs(cache_dir: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    first = support.rootfs_cache()
    assert first.parent == cache_dir and first.name.startswith("bookworm-minbase-")
    assert support.rootfs_cache() == first                       # stable
    arm = support.rootfs_cache("arm64", ("python3-venv",))       # tests/hil's arm64 root
    assert arm.name.startswith("bookworm-minbase-arm64-")
    assert arm != support.rootfs_cache("arm64") != first          # each input counts
    assert support.rootfs_cache("arm64", ("python3-venv",), unpack_only=True) != arm
    monkeypatch.setattr(support, "debian_mirror", lambda: "http://elsewhere.example/debian")
    assert support.rootfs_cache() != first                       # another mirror
    monkeypatch.setattr(support, "ROOTFS_FORMAT", "other")
    assert support.rootfs_cache().parent == cache_dir
    monkeypatch.setenv("TIENGMO_ROOTFS_CACHE", "/somewhere/root.tgz")
    assert support.rootfs_cache() == Path("/somewhere/root.tgz")
    assert support.rootfs_cache("arm64") != Path("/somewhere/root.tgz")   # names amd64's


def test_two_runs_at_once_build_the_root_once(cache_dir: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[float] = []
    inside = threading.Event()

    def fake_build(cache: Path, *inputs: object) -> None:
        builds.append(time.monotonic())
        inside.set()
        time.sleep(0.5)                       # the other run arrives meanwhile
        tree = tmp_path / f"tree-{len(builds)}"
        (tree / "etc").mkdir(parents=True)
        (tree / "usr" / "sbin").mkdir(parents=True)
        (tree / "etc" / "debian_version").write_text("12.0\n")
        subprocess.run(["tar", "-C", str(tree), "-czf", str(cache), "."], check=True)

    monkeypatch.setattr(support, "_build_rootfs", fake_build)
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            support.make_root(tmp_path / name)
        except BaseException as exc:          # reported below, not lost in the thread
            errors.append(exc)

    a = threading.Thread(target=run, args=("root-a",))
    a.start()
    assert inside.wait(10)
    b = threading.Thread(target=run, args=("root-b",))
    b.start()
    a.join(30)
    b.join(30)
    assert not errors, errors
    assert len(builds) == 1, "the second run built the root again instead of waiting"
    for name in ("root-a", "root-b"):
        root = tmp_path / name
        assert (root / "etc" / "debian_version").read_text() == "12.0\n"
        assert (root / "usr" / "sbin" / "policy-rc.d").read_text().endswith("exit 101\n")
    support.make_root(tmp_path / "root-c")     # a later run only unpacks
    assert len(builds) == 1
