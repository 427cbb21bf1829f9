"""Each container's writable layer: its disk usage and its filesystem's size and inodes, and the
walker's own figures (the walker, cgwatch/fsusage.py, measures them in the background).

cAdvisor's Docker and Podman handlers report one filesystem per container: the writable layer's
`du` as usage, under the ``device`` of the filesystem holding it, whose size is the limit
(container/docker/fs.go FsStats). Here the layer is found from the container's processes, not from
a runtime's storage layout, so containerd's and any other overlay-rooted container get it too:
the root mount of the lowest PID in the cgroup (every process of a container shares its root) is
an overlay whose ``upperdir`` is the layer (host/mountinfo.py).

Inodes are statfs(2)'s, the filesystem's total and free, as cAdvisor reports every filesystem
(fs/vfs/stats.go). For Docker containers cAdvisor itself puts the layer's own inode count in
container_fs_inodes_total and leaves container_fs_inodes_free at 0 (google/cadvisor#3534), which
makes every "inodes free / total" alert fire; cgwatch reports the filesystem's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from ..exposition import Family
from ..fsusage import LayerStats, LayerWalker, WalkerStats
from ..host.mountinfo import read_root_mounts, writable_layer
from ..host.procpid import root_mount
from .base import Collector, MetricSpec, ScrapeContext, build_families

log = logging.getLogger("cgwatch.collectors.fs")

DEVICE = (("device", lambda s: s.fs.device),)
# A runtime puts its init in the cgroup before it pivots to the container's root (runc init), so a
# PID read as "no layer" is read again after this long; a layer found is kept while its PID lives.
RECHECK_S = 30.0


def _usage_bytes(s: LayerStats) -> int | None:
    return s.usage.bytes if s.usage is not None else None  # no sample until the first walk ends


# cAdvisor's names, helps and order (lib/metrics/prometheus.go, DiskUsageMetrics).
LAYER_SPECS = (
    MetricSpec("container_fs_inodes_free", "Number of available Inodes",
               "gauge", lambda s: s.fs.inodes_free, labels=DEVICE),
    # cAdvisor declares this a gauge; a gauge named _total fails `promtool check metrics`, so it
    # is untyped here, under cAdvisor's name (as container_memory_failcnt is).
    MetricSpec("container_fs_inodes_total", "Number of Inodes",
               "untyped", lambda s: s.fs.inodes_total, labels=DEVICE),
    MetricSpec("container_fs_limit_bytes", "Number of bytes that can be consumed by the container on this filesystem.",
               "gauge", lambda s: s.fs.limit_bytes, labels=DEVICE),
    MetricSpec("container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.",
               "gauge", _usage_bytes, labels=DEVICE),
)
WALKER_SPECS = (
    MetricSpec("cgwatch_fs_walk_duration_seconds",
               "Seconds the writable-layer walker's last pass took (its budget bounds the walking in it).",
               "gauge", lambda w: w.last_pass_s),
    MetricSpec("cgwatch_fs_walk_passes_total", "Passes of the writable-layer walker.",
               "counter", lambda w: w.passes),
    MetricSpec("cgwatch_fs_walk_errors_total", "Writable layers, or directories in them, the walker could not read.",
               "counter", lambda w: w.errors),
    MetricSpec("cgwatch_fs_walk_pending_layers",
               "Layers due for a walk that the last pass left to the next one (its budget ran out).",
               "gauge", lambda w: w.pending),
)


class FsCollector(Collector):
    name = "fs"
    specs = (*LAYER_SPECS, *WALKER_SPECS)

    def __init__(self, walker: LayerWalker | None = None):
        """Without a walker (the CLI's one-off collection) nothing is measured: no samples."""
        self._walker = walker
        self._known: dict[str, tuple[int, str | None, float]] = {}  # cgroup path -> (PID, its layer, read at)
        self._host_root: str | None = None

    def collect(self, ctx: ScrapeContext) -> Iterable[Family]:
        walker = self._walker
        if walker is None:
            return build_families(self.specs, ())
        layers = self._layers(ctx)
        walker.track(layers.values())
        rows = [(ctx.labels(c), s) for c in ctx.containers
                if (layer := layers.get(c.path)) is not None and (s := walker.stats(layer)) is not None]
        stats: WalkerStats = walker.stats_now
        return [*build_families(LAYER_SPECS, rows), *build_families(WALKER_SPECS, [("", stats)])]

    def _layers(self, ctx: ScrapeContext) -> dict[str, str]:
        """cgroup path -> its writable layer. A layer is reported once, on the first cgroup (in
        path order: a container before the cgroups nested in it) whose processes have it as root.
        The root cgroup is the host, whose filesystems are not a container's layer."""
        host_root = self._host_root_device(ctx)
        now = time.monotonic()
        known: dict[str, tuple[int, str | None, float]] = {}
        found: dict[str, str] = {}
        owners: set[str] = set()
        for c in ctx.containers:
            pids = ctx.procs(c.path) if c.path != "/" else []
            if not pids:
                continue
            entry = self._known.get(c.path)
            if entry is None or entry[0] not in pids or (entry[1] is None and now - entry[2] > RECHECK_S):
                pid = min(pids)
                entry = (pid, self._read_layer(ctx, pid, host_root), now)
            known[c.path] = entry
            layer = entry[1]
            if layer is not None and layer not in owners:
                owners.add(layer)
                found[c.path] = layer
        self._known = known
        return found

    @staticmethod
    def _read_layer(ctx: ScrapeContext, pid: int, host_root: str | None) -> str | None:
        try:
            mounts = read_root_mounts(ctx.proc.root, pid)
        except OSError as exc:  # EACCES under a foreign LSM policy: that cgroup gets no layer
            log.debug("mountinfo unreadable", extra={"pid": pid, "error": str(exc)})
            return None
        return writable_layer(mounts, host_root) if mounts is not None else None

    def _host_root_device(self, ctx: ScrapeContext) -> str | None:
        """MAJ:MIN of the host's "/" (PID 1's, else the agent's own), read until it is known."""
        if self._host_root is None:
            for pid in (1, "self"):
                try:
                    root = root_mount(read_root_mounts(ctx.proc.root, pid) or [])
                except OSError:
                    continue
                if root is not None:
                    self._host_root = root.device
                    break
        return self._host_root
