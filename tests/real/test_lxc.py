"""A real LXC container (LXC 5, busybox template, no network): found by its name, changed by its
name and by its cgroup path, and the kernel holds what the reply says.

LXC has no API cgwatch talks to: the cgroup path names the container (/lxc.payload.<name>; its
monitor, /lxc.monitor.<name>, is not the container), and limits go to cgroupfs.
Needs root and `lxc` (tests/support/install-deps.sh); v1 host only (no LXC in the v2 guest).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from cgwatch.host.layout import Mode, detect_layout
from tests.conftest import need
from tests.support.cgroups import _rmdir_retrying, have_real_cgroups, wait_for

pytestmark = [pytest.mark.real, pytest.mark.lxc]

CGROUP_ROOT = Path("/sys/fs/cgroup")
JSON = {"Content-Type": "application/json"}


def lxc_missing() -> str | None:
    reason = have_real_cgroups()
    if reason is not None:
        return reason
    for tool in ("lxc-create", "lxc-start", "lxc-stop", "lxc-destroy", "busybox"):
        if shutil.which(tool) is None:
            return f"needs {tool} (apt-get install lxc busybox-static)"
    return None


def kernel_file(cg: str, name: str) -> Path:
    """The host file of a cgroup's limit, in the hierarchy of its controller."""
    layout = detect_layout(CGROUP_ROOT)
    if layout.mode is Mode.V2:
        return CGROUP_ROOT / cg.lstrip("/") / name
    return layout.v1[name.split(".", 1)[0]] / cg.lstrip("/") / name


def lxc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60)


@pytest.fixture
def lxc_container(tmp_path):
    """A running busybox container under a unique name; stopped, destroyed, and the empty
    /lxc.pivot LXC leaves behind removed if this test made it."""
    need(lxc_missing())
    name = f"cgwatch-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    # Every mounted hierarchy (devices, freezer and the named systemd one too: LXC makes its cgroups
    # in all of them, where cgwatch reads only some).
    roots = [CGROUP_ROOT] if detect_layout(CGROUP_ROOT).mode is Mode.V2 else [
        p for p in CGROUP_ROOT.iterdir() if p.is_dir() and not p.is_symlink()]
    pivots = [root / "lxc.pivot" for root in roots if not (root / "lxc.pivot").exists()]
    conf = tmp_path / "lxc.conf"
    conf.write_text("lxc.net.0.type = empty\n")  # no bridge here, and none needed
    made = lxc("lxc-create", "-t", "busybox", "-n", name, "-f", str(conf))
    assert made.returncode == 0, made.stderr
    try:
        started = lxc("lxc-start", "-n", name)
        assert started.returncode == 0, started.stderr
        payload = kernel_file(f"/lxc.payload.{name}", "pids.max").parent
        wait_for(lambda: payload.exists() and (payload / "cgroup.procs").read_text().strip(), 10)
        yield name
    finally:
        lxc("lxc-stop", "-n", name, "-k")
        destroyed = lxc("lxc-destroy", "-n", name)
        # LXC removes the container's and its monitor's cgroups as it stops, but not always before
        # lxc-stop returns (seen once after a whole suite: both left, empty, in every hierarchy).
        for root in roots:
            for cg in (f"lxc.payload.{name}", f"lxc.monitor.{name}"):
                if (root / cg).exists():
                    _rmdir_retrying(root / cg)
        for pivot in pivots:
            try:
                pivot.rmdir()  # only an empty cgroup can be removed: one with tasks stays
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.EBUSY):
                    raise
        assert destroyed.returncode == 0, destroyed.stderr


async def test_an_lxc_container_is_listed_by_its_name_and_runtime(api, lxc_container):
    name = lxc_container
    resp = await api.get(f"/api/v1/containers/{name}")
    body = await resp.json()
    assert resp.status == 200, body
    assert (body["runtime"], body["id"], body["name"], body["cgroup"]) == ("lxc", name, name, f"/lxc.payload.{name}")
    listing = await (await api.get("/api/v1/containers")).json()
    monitor = next(c for c in listing["containers"] if c["cgroup"] == f"/lxc.monitor.{name}")
    assert monitor["runtime"] == "raw"


async def test_an_lxc_container_is_changed_by_name_and_by_cgroup_path(api, lxc_container):
    name = lxc_container
    cg = f"/lxc.payload.{name}"
    resp = await api.patch(f"/api/v1/containers/{name}/limits", data=json.dumps({"cpus": 0.5, "memory": "64m"}),
                           headers=JSON)
    body = await resp.json()
    assert resp.status == 200, body
    assert (body["runtime"], body["id"], body["applied_via"]) == ("lxc", name, "cgroupfs")
    if detect_layout(CGROUP_ROOT).mode is Mode.V2:
        assert kernel_file(cg, "cpu.max").read_text().split() == ["50000", "100000"]
        assert int(kernel_file(cg, "memory.max").read_text()) == 64 << 20
    else:
        assert kernel_file(cg, "cpu.cfs_quota_us").read_text().strip() == "50000"
        assert int(kernel_file(cg, "memory.limit_in_bytes").read_text()) == 64 << 20

    resp = await api.patch(f"/api/v1/cgroups{cg}/limits", data=json.dumps({"pids_limit": 50}), headers=JSON)
    body = await resp.json()
    assert resp.status == 200, body
    assert (body["runtime"], body["id"], body["applied_via"]) == ("lxc", name, "cgroupfs")
    assert kernel_file(cg, "pids.max").read_text().strip() == "50"
    assert (body["limits"]["cpus"], body["limits"]["memory_limit_bytes"]) == (0.5, 64 << 20)  # PATCH kept them
    # The monitor is LXC's own process, not the container: its limits were never touched.
    assert kernel_file(f"/lxc.monitor.{name}", "pids.max").read_text().strip() == "max"
