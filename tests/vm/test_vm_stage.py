"""Host side of the cgroup v2 stage: tests/vm/guest.sh boots, runs a command, passes its output and
exit status through, and gives up with 255 when the guest's boot or command hangs. Three boots,
~3 s, ~13 s and ~1 s.

Needs root and QEMU; without them this skips on a laptop, and fails in CI (CI=true), where
guest.sh installs what it needs itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from tests.support.env import IN_CI, REPO

GUEST = REPO / "tests" / "vm" / "guest.sh"

pytestmark = pytest.mark.vm


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "the cgroup v2 guest needs root (QEMU 9p share of /, package installs)"
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 not installed (apt-get install qemu-system-x86, or run with CI=true)"
    return None


@pytest.fixture(autouse=True)
def _need_vm():
    reason = _missing()
    if reason and not IN_CI:
        pytest.skip(reason)


def run_guest(*cmd: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(GUEST), "--", *cmd],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout,
    )


def test_command_output_env_and_exit_status_come_back():
    script = (
        'cat /sys/fs/cgroup/cgroup.controllers; '
        'echo "subtree=$(cat /sys/fs/cgroup/cgroup.subtree_control)"; '
        'echo "fs=$(stat -fc %T /sys/fs/cgroup)"; '
        'echo "cwd=$PWD kernel=$CGWATCH_KERNEL probe=$CGWATCH_VM_STAGE_PROBE"; '
        'echo "to stderr" >&2; '
        'exit 3'
    )
    r = run_guest("sh", "-c", script, CGWATCH_VM_STAGE_PROBE="a b'c")
    assert r.returncode == 3, (r.stdout, r.stderr)
    out = r.stdout.splitlines()
    assert set("cpuset cpu io memory pids".split()) <= set(out[0].split()), r.stdout
    assert set(out[1].removeprefix("subtree=").split()) >= {"cpu", "cpuset", "memory", "pids", "io"}
    assert "fs=cgroup2fs" in out
    assert f"cwd={REPO} kernel=v2-guest probe=a b'c" in out
    assert "to stderr" in out          # the guest's stderr arrives on stdout, in order
    assert "\r" not in r.stdout
    assert "guest.sh: exit 3" in r.stderr


def test_a_hung_guest_command_gives_255_after_the_timeout():
    # The limit counts from the command's start, not the boot's: measured here from the moment
    # the command's first line reaches the host, so a slow boot cannot fail or pass this.
    limit = 10
    proc = subprocess.Popen(
        ["bash", str(GUEST), "--", "sh", "-c", "echo started; exec sleep 3600"],
        env={**os.environ, "CGWATCH_VM_TIMEOUT": str(limit)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        first = proc.stdout.readline()
        started = time.monotonic()
        out, err = proc.communicate(timeout=limit + 120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    ran = time.monotonic() - started
    assert first.strip() == "started", (first, err)
    assert proc.returncode == 255, (out, err)
    assert f"did not finish within CGWATCH_VM_TIMEOUT={limit}s of its start" in err
    assert limit - 1 <= ran < limit + 15


def test_a_guest_that_does_not_reach_the_command_in_time_says_so():
    r = run_guest("sh", "-c", "echo started", timeout=120, CGWATCH_VM_BOOT_TIMEOUT="1")
    assert r.returncode == 255, (r.stdout, r.stderr)
    assert "started" not in r.stdout
    assert "did not start the command within CGWATCH_VM_BOOT_TIMEOUT=1s" in r.stderr


def test_a_timeout_that_is_not_a_number_is_a_usage_error():
    r = run_guest("true", CGWATCH_VM_TIMEOUT="30s")
    assert r.returncode == 2
    assert "CGWATCH_VM_TIMEOUT must be a whole number of seconds" in r.stderr
