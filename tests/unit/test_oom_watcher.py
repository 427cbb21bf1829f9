"""The OOM watcher registers only on a real cgroup filesystem: registering writes
cgroup.event_control, which must never happen to a copy of the files."""

from __future__ import annotations

import shutil

from cgwatch.deaths.ledger import OomRecord
from cgwatch.deaths.watcher import OomWatcher
from cgwatch.hostfs import Host
from tests.conftest import FIXTURES

DOCKER = "/docker/40686f14f3cef51f059747ef6fd6bf2643b9b3a5ffdea33518247d06e53c6c03"


def test_a_copy_of_cgroup_files_is_never_written(tmp_path):
    tree = tmp_path / "v1"
    shutil.copytree(FIXTURES / "cgroupfs" / "v1", tree, symlinks=True)
    control = tree / "cgroup" / "memory" / DOCKER.lstrip("/") / "cgroup.event_control"
    control.write_text("")  # as a capture that kept it would have it
    watcher = OomWatcher(Host(tree / "cgroup", tree / "proc").layout)
    watcher.start()
    try:
        assert not watcher.running
        assert not watcher.watch(OomRecord(DOCKER))
        assert control.read_text() == ""
    finally:
        watcher.stop()
