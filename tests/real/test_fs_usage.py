"""Writable-layer usage (container_fs_usage_bytes, _limit_bytes, _inodes_*): a real Docker container's
layer, a hand-made overlay container's, GNU du as the reference for what a walk counts, and the
walker's budget and independence from scrapes measured on real trees."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from cgwatch.agent import Agent
from cgwatch.collectors.fs import FsCollector
from cgwatch.fsusage import DirUsage, DirWalk, LayerWalker
from cgwatch.server.app import create_app
from tests.conftest import need
from tests.support.aio import scrape
from tests.support.agent import agent_settings, value
from tests.support.cgroups import wait_for
from tests.support.docker import DOCKER_HOST

pytestmark = pytest.mark.real

MiB = 1 << 20
BUSYBOX = Path("/bin/busybox")


def du(path: Path) -> DirUsage:
    """GNU du's answer: allocated bytes and inodes of the tree, hard links once, one filesystem."""
    def one(*flags: str) -> int:
        out = subprocess.run(["du", "-s", "--one-file-system", *flags, str(path)], check=True,
                             capture_output=True, text=True, timeout=60).stdout
        return int(out.split()[0])
    return DirUsage(bytes=one("-B1"), inodes=one("--inodes"))


def findmnt(path: Path, column: str) -> str:
    return subprocess.run(["findmnt", "-n", "-v", "-o", column, "--target", str(path)], check=True,
                          capture_output=True, text=True, timeout=10).stdout.strip()


@pytest.fixture
def tmpfs(tmp_path):
    """A tmpfs of our own, unmounted afterwards: a tree of 100k+ links is made in about a second
    there, and removed at once with it. Walking tmpfs costs about as much per entry as making it."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1g", "cgwatch-test-layers", str(mnt)],
                   check=True, capture_output=True, timeout=10)
    try:
        yield mnt
    finally:
        # Any cgwatch agent on the host (another test's `cgwatch serve`) may be walking a layer on
        # it this moment (EBUSY): a walker holds a directory open for one budget at most.
        wait_for(lambda: subprocess.run(["umount", str(mnt)], capture_output=True, timeout=30).returncode == 0,
                 10.0, 0.2)


def link_tree(root: Path, count: int, per_dir: int = 1000) -> Path:
    """``count`` hard links to one 4 KiB file, ``per_dir`` a directory: cheap to make, one entry
    each to walk (and the walk must count the file once)."""
    root.mkdir(parents=True, exist_ok=True)
    src = root / "data"
    src.write_bytes(b"x" * 4096)
    for d in range(count // per_dir):
        sub = root / f"d{d}"
        sub.mkdir()
        for i in range(per_dir):
            os.link(src, sub / str(i))
    return root


# --- what a walk counts -----------------------------------------------------------------------

def test_a_walk_counts_what_du_counts(tmp_path):
    tree = tmp_path / "layer"
    (tree / "etc" / "deep" / "er").mkdir(parents=True)
    (tree / "big").write_bytes(os.urandom(3 * MiB + 123))
    (tree / "etc" / "deep" / "er" / "small").write_bytes(b"x")
    os.link(tree / "big", tree / "etc" / "big-again")       # once, not twice
    os.symlink("/nowhere", tree / "etc" / "dangling")       # the link itself, not its target
    with open(tree / "sparse", "wb") as f:                  # allocated blocks, not the apparent size
        f.truncate(100 * MiB)
    os.mkfifo(tree / "fifo")
    usage = DirWalk(tree).step(lambda: False)
    assert usage == du(tree)
    assert 3 * MiB < usage.bytes < 4 * MiB


def test_a_walk_cut_short_resumes_to_the_same_total(tmpfs):
    tree = link_tree(tmpfs / "t", 5000, per_dir=500)
    walk, passes, usage = DirWalk(tree), 0, None
    while usage is None:
        allowed = iter(range(700))                           # 700 entries a pass
        usage = walk.step(lambda: next(allowed, None) is None)
        passes += 1
    assert passes > 5
    assert usage == du(tree)


def test_a_walk_of_a_layer_that_is_not_there_raises_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        DirWalk(tmp_path / "absent").step(lambda: False)


# --- the walker's budget ---------------------------------------------------------------------

async def test_the_walker_keeps_to_its_budget_and_finishes_over_several_passes(tmpfs):
    tree = link_tree(tmpfs / "t", 60_000)
    budget = 0.02
    started = time.perf_counter()
    expected = DirWalk(tree).step(lambda: False)
    unbudgeted_s = time.perf_counter() - started
    assert unbudgeted_s > 4 * budget, "the tree is too small to need several passes"
    walker = LayerWalker(Path("/proc"), budget_s=budget, rest_s=0.005, interval_s=600)
    walker.track([str(tree)])
    await walker.start()
    try:
        stats = await asyncio.to_thread(
            wait_for, lambda: (s := walker.stats(str(tree))) is not None and s.usage is not None and s, 60.0, 0.01)
    finally:
        await walker.stop()
    figures = walker.stats_now
    assert figures.passes >= 4, (figures, unbudgeted_s)
    # A pass ends within one entry of its deadline (plus a GIL switch interval or two).
    assert figures.longest_pass_s < budget + 0.03, (figures, unbudgeted_s)
    assert stats.usage == expected == du(tree)


async def test_a_new_layer_is_measured_before_a_long_walk_goes_on(tmpfs):
    big, small = link_tree(tmpfs / "big", 60_000), link_tree(tmpfs / "small", 1000)
    walker = LayerWalker(Path("/proc"), budget_s=0.02, rest_s=0.02, interval_s=600)
    walker.track([str(big)])
    await walker.start()
    try:
        await asyncio.to_thread(wait_for, lambda: walker.current == str(big), 10.0, 0.001)
        walker.track([str(big), str(small)])                 # a container started meanwhile
        await asyncio.to_thread(wait_for, lambda: (s := walker.stats(str(small))) and s.usage, 10.0, 0.001)
        assert walker.stats(str(big)).usage is None          # the long walk waited for it
        await asyncio.to_thread(wait_for, lambda: (s := walker.stats(str(big))) and s.usage, 60.0, 0.01)
    finally:
        await walker.stop()
    assert walker.stats(str(big)).usage == du(big)


async def test_a_layer_the_agent_cannot_read_gets_no_series_and_does_not_stop_the_walker(tmpfs):
    # An agent in a container without the host's filesystem sees host paths as absent.
    tree = link_tree(tmpfs / "t", 1000)
    walker = LayerWalker(Path("/proc"), interval_s=600)
    walker.track(["/nonexistent/cgwatch-test/upper", str(tree)])
    await walker.start()
    try:
        await asyncio.to_thread(wait_for, lambda: (s := walker.stats(str(tree))) and s.usage, 10.0, 0.01)
    finally:
        await walker.stop()
    assert walker.stats("/nonexistent/cgwatch-test/upper") is None
    assert walker.stats_now.errors >= 1


# --- a real container's layer ----------------------------------------------------------------

def overlay_missing() -> str | None:
    if "overlay" not in Path("/proc/filesystems").read_text():
        return "the kernel has no overlay filesystem"
    if not BUSYBOX.exists():
        return "needs /bin/busybox (Debian busybox-static) for the container's root filesystem"
    if shutil.which("unshare") is None:
        return "needs unshare (util-linux)"
    return None


def root_fstype(pid: int) -> str | None:
    found = None
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        if left.split()[4] == "/":
            found = right.split()[0]
    return found


@pytest.fixture
def overlay_container(sandbox, tmpfs):
    """A runtime-less container: a raw cgroup whose process runs chrooted into an overlay mounted
    in its own mount namespace (so it goes with the process), the upper layer on our tmpfs.
    Yields (cgroup, upper dir); the upper layer is filled before the mount, as overlayfs wants
    (Documentation/filesystems/overlayfs.rst, "Changes to underlying filesystems")."""
    need(overlay_missing())
    dirs = {name: tmpfs / name for name in ("lower", "upper", "work", "merged")}
    for d in dirs.values():
        d.mkdir()
    (dirs["lower"] / "bin").mkdir()
    shutil.copy2(BUSYBOX, dirs["lower"] / "bin" / "busybox")

    procs = []

    def start(files: int) -> tuple[str, Path]:
        link_tree(dirs["upper"] / "tree", files)
        cg = sandbox.create("layer")
        opts = f"lowerdir={dirs['lower']},upperdir={dirs['upper']},workdir={dirs['work']}"
        proc = sandbox.spawn(cg, ["unshare", "--mount", "--propagation", "private", "sh", "-ec",
                                  f'mount -t overlay overlay -o "{opts}" "{dirs["merged"]}"; '
                                  f'exec chroot "{dirs["merged"]}" /bin/busybox sleep 600'])
        procs.append(proc)
        wait_for(lambda: root_fstype(proc.pid) == "overlay", 10.0, 0.02)
        return cg, dirs["upper"]
    yield start
    # Before the tmpfs goes: the overlay in the process's mount namespace holds it until it exits.
    for proc in procs:
        proc.kill()
        proc.wait()


async def test_a_scrape_answers_while_a_walk_is_in_progress(overlay_container, tmp_path, aiohttp_client):
    cg, upper = await asyncio.to_thread(overlay_container, 200_000)
    # One pass may walk the whole layer (~1.5 s here): a scrape that waited for the walker would
    # answer only after it, with the usage in hand. Only the fs collector runs, so the scrape's
    # own time (a busy host's 1000 cgroups take other collectors seconds) stays well below that.
    walker = LayerWalker(Path("/proc"), budget_s=120, interval_s=600)
    agent = Agent(agent_settings(tmp_path), fs_walker=walker, collectors=[FsCollector(walker)])
    await agent.start()
    try:
        client = await aiohttp_client(create_app(agent))
        await scrape(client)                                   # finds the layer: the walker starts on it
        await asyncio.to_thread(wait_for, lambda: walker.current == str(upper), 30.0, 0.001)
        asked = time.monotonic()
        text = await scrape(client)
        answered_in = time.monotonic() - asked
        assert walker.current == str(upper), f"the walk ended before the scrape answered ({answered_in:.3f} s)"
        print(f"scrape answered in {answered_in:.3f} s during the walk")
        assert value(text, "container_fs_usage_bytes", id=cg) is None    # not measured yet: no sample
        assert value(text, "container_fs_limit_bytes", id=cg) == os.statvfs(upper).f_blocks * os.statvfs(upper).f_frsize

        await asyncio.to_thread(wait_for, lambda: (s := walker.stats(str(upper))) and s.usage, 60.0, 0.02)
        text = await scrape(client)
    finally:
        await agent.stop()
    device = findmnt(upper, "MAJ:MIN")                           # tmpfs: no block device, so MAJ:MIN
    assert value(text, "container_fs_usage_bytes", id=cg, device=device) == du(upper).bytes
    assert value(text, "cgwatch_fs_walk_passes_total") >= 1


@pytest.mark.docker
async def test_a_container_that_writes_50_mb_shows_about_50_mb_of_fs_usage(docker_containers, make_agent,
                                                                           aiohttp_client):
    cid, name = await asyncio.to_thread(
        docker_containers.run, cmd=("sh", "-c", "dd if=/dev/zero of=/big bs=1M count=50 && echo written && sleep 600"))
    await asyncio.to_thread(wait_for, lambda: "written" in subprocess.run(
        ["docker", "logs", cid], capture_output=True, text=True, timeout=30).stdout, 30.0, 0.1)
    upper = Path(docker_containers.inspect(cid)["GraphDriver"]["Data"]["UpperDir"])
    path = f"/docker/{cid}"
    agent = await make_agent(docker_host=DOCKER_HOST)
    client = await aiohttp_client(create_app(agent))
    text = None
    deadline = time.monotonic() + 20  # the first scrape finds the layer; the walker measures it at once
    while time.monotonic() < deadline:
        text = await scrape(client)
        if value(text, "container_fs_usage_bytes", id=path, name=name) is not None:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("no container_fs_usage_bytes for the container within 20 s")
    vfs = os.statvfs(upper)
    device = findmnt(upper, "SOURCE")                             # cAdvisor's label: the block device
    usage = value(text, "container_fs_usage_bytes", id=path, name=name, device=device)
    assert abs(usage - 50 * MiB) < 2 * MiB, usage
    assert value(text, "container_fs_limit_bytes", id=path, device=device) == vfs.f_blocks * vfs.f_frsize
    assert value(text, "container_fs_inodes_total", id=path, device=device) == vfs.f_files
    # Free inodes move with everything else on the disk between the walker's statfs and ours.
    assert abs(value(text, "container_fs_inodes_free", id=path, device=device) - vfs.f_ffree) < 5000
    # Found from the container's mountinfo, it is the layer Docker itself names.
    assert agent.fs_walker.stats(str(upper)) is not None

    promtool = shutil.which("promtool")
    need(None if promtool else "needs promtool (Debian package prometheus)")
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr
