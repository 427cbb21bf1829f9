"""Finding a container's writable layer in /proc/<pid>/mountinfo, table-tested on real lines.

How each line was captured on this project's CI host (Debian 12, Linux 6.18, cgroup v1 hybrid):
- DOCKER: `docker run -d local/busybox sleep 600` on the suite's dockerd (Docker 20.10, overlay2,
  data root /tmp/cgwatch-ci/docker), then the "/" line of `/proc/$(docker inspect -f
  '{{.State.Pid}}' ID)/mountinfo`; `docker inspect -f '{{.GraphDriver.Data.UpperDir}}'` gave the
  same upper directory.
- CONTAINERD: the "/" line of a `ctr run` task's init (containerd 1.6, overlayfs snapshotter).
- CHROOT: a hand-made container (tests/real/test_fs_usage.py's): `mount -t overlay` over a tmpfs,
  then `chroot merged /bin/busybox sleep`; Linux 6.18 adds `uuid=on` to the options it shows.
- HOST: the "/" line of /proc/1/mountinfo, and of a host process.
The other lines are written by hand for cases this host does not produce; each says so.
"""

from __future__ import annotations

import os

import pytest

from cgwatch.host.mountinfo import device_source, major_minor, read_mounts, read_root_mounts, root_lines, writable_layer
from cgwatch.host.procpid import parse_mountinfo, root_mount
from tests.conftest import FIXTURES

DOCKER = ("147 105 0:65 / / rw,relatime master:3 - overlay overlay rw,lowerdir=/tmp/cgwatch-ci/docker/overlay2/l/"
          "MJUQEW4Q2BTMYFJGBF2ZS5DJ52:/tmp/cgwatch-ci/docker/overlay2/l/AX2KU5FTWXMGI6OBVO3DXV3NL4,upperdir=/tmp/"
          "cgwatch-ci/docker/overlay2/25f7b80f4f55f4030691495ec78767561712307995fe85d3f5066f2cc193c2c3/diff,workdir="
          "/tmp/cgwatch-ci/docker/overlay2/25f7b80f4f55f4030691495ec78767561712307995fe85d3f5066f2cc193c2c3/work")
DOCKER_UPPER = "/tmp/cgwatch-ci/docker/overlay2/25f7b80f4f55f4030691495ec78767561712307995fe85d3f5066f2cc193c2c3/diff"
CONTAINERD = ("87 57 0:43 / / rw,relatime - overlay overlay rw,lowerdir=/tmp/cgw-ctd-v5x0oj_p/root/"
              "io.containerd.snapshotter.v1.overlayfs/snapshots/1/fs,upperdir=/tmp/cgw-ctd-v5x0oj_p/root/"
              "io.containerd.snapshotter.v1.overlayfs/snapshots/3/fs,workdir=/tmp/cgw-ctd-v5x0oj_p/root/"
              "io.containerd.snapshotter.v1.overlayfs/snapshots/3/work")
CHROOT = ("245 30 0:102 / / rw,relatime - overlay overlay rw,lowerdir=/dev/shm/cgw-ov.xfz8/lower,"
          "upperdir=/dev/shm/cgw-ov.xfz8/upper,workdir=/dev/shm/cgw-ov.xfz8/work,uuid=on")
HOST = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534"
# By hand: a read-only overlay (no upper layer), as a `--read-only` image mount might be.
READ_ONLY = "300 290 0:90 / / ro,relatime - overlay overlay ro,lowerdir=/l/a:/l/b"
# By hand: dockerd's overlay2 mounts with paths relative to its data root when the options would
# not fit in a page (many layers: mountFrom chdirs there first); the mountinfo shows them as given.
RELATIVE = ("310 290 0:91 / / rw,relatime - overlay overlay rw,lowerdir=l/A:l/B,upperdir=0123abcd/diff,"
            "workdir=0123abcd/work")
# By hand: a layer under a path with a space, which mountinfo escapes as \040 (fs/proc_namespace.c).
ESCAPED = ("320 290 0:92 / / rw,relatime - overlay overlay rw,lowerdir=/data/lower,"
           "upperdir=/data/my\\040layers/upper,workdir=/data/my\\040layers/work")


@pytest.mark.parametrize("lines, upper", [
    ([DOCKER], DOCKER_UPPER),
    ([CONTAINERD], "/tmp/cgw-ctd-v5x0oj_p/root/io.containerd.snapshotter.v1.overlayfs/snapshots/3/fs"),
    ([CHROOT], "/dev/shm/cgw-ov.xfz8/upper"),
    ([ESCAPED], "/data/my layers/upper"),
    ([HOST], None),                          # a host process: its root is the host's ext4
    ([READ_ONLY], None),                     # nothing writable
    ([RELATIVE], None),                      # relative to a directory mountinfo does not say
    ([HOST, DOCKER], DOCKER_UPPER),          # stacked at "/": the top one is the task's root
    ([DOCKER, HOST], None),
    ([], None),
], ids=["docker", "containerd", "chroot", "escaped", "host", "read-only", "relative", "stacked", "stacked-host", "none"])
def test_writable_layer_of_a_tasks_root(lines, upper):
    assert writable_layer(parse_mountinfo("\n".join(lines))) == upper


def test_the_hosts_own_overlay_root_is_not_a_container_layer():
    # A host booted from an overlay (a live system): its processes' "/" is that overlay, and so is
    # PID 1's. Same superblock (MAJ:MIN), so not reported once per host cgroup.
    mounts = parse_mountinfo(CHROOT)
    assert writable_layer(mounts, host_root_device="0:102") is None
    assert writable_layer(mounts, host_root_device="254:0") == "/dev/shm/cgw-ov.xfz8/upper"


def test_a_docker_containers_layer_from_a_captured_proc_tree():
    # tests/fixtures/proc-inspect/README.md: 852 is PID 1 of a Docker 20.10 container.
    mounts = read_mounts(FIXTURES / "proc-inspect", 852)
    assert writable_layer(mounts) == ("/tmp/cgw-manual/docker/overlay2/"
                                      "a3423c0321556098bda104e08cf2544ba5327987842eeafe935c721d3b4dbce4/diff")


def test_read_mounts_of_a_gone_task_is_none():
    assert read_mounts(FIXTURES / "proc-inspect", 999999) is None
    assert read_root_mounts(FIXTURES / "proc-inspect", 999999) is None


@pytest.mark.parametrize("pid", [852, 31206, 32474])     # two containers and a host process
def test_only_the_root_lines_are_parsed_and_they_give_the_same_root(pid):
    proc = FIXTURES / "proc-inspect"
    roots = read_root_mounts(proc, pid)
    assert roots and all(m.mount_point == "/" for m in roots)
    assert root_mount(roots) == root_mount(read_mounts(proc, pid))


def test_root_lines_keep_stacked_roots_in_order_and_nothing_else():
    # By hand: the last line is a mount at "/ " (a directory named by a space, escaped), not "/".
    text = "\n".join([HOST, "28 27 0:25 / /mnt/x ro - tmpfs t ro", DOCKER, "29 27 0:26 / /\\040 rw - tmpfs t rw"])
    assert root_lines(text) == "\n".join([HOST, DOCKER])


@pytest.mark.parametrize("device, source", [
    ("254:0", "/dev/vda"),                   # the block device ext4 was mounted from
    ("0:65", None),                          # an overlay's anonymous device: no block device
    ("0:23", None),                          # tmpfs: source "tmpfs"
    ("8:1", None),                           # not mounted at all
])
def test_device_source_is_the_mounts_block_device(device, source):
    mounts = parse_mountinfo("\n".join([HOST, DOCKER, "25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw"]))
    assert device_source(mounts, device) == source


def test_a_bind_mount_of_the_same_filesystem_names_the_same_device():
    # The suite's data root bind-mounted onto itself (captured from /proc/self/mountinfo here).
    line = "42 27 254:0 /tmp/cgwatch-ci/docker /tmp/cgwatch-ci/docker rw,relatime shared:1 - ext4 /dev/vda rw"
    assert device_source(parse_mountinfo(line), "254:0") == "/dev/vda"


def test_major_minor_is_mountinfos_spelling_of_st_dev():
    assert major_minor(os.makedev(254, 0)) == "254:0"
    assert major_minor(os.makedev(259, 65537)) == "259:65537"
