"""The agent: one host's parts wired together, each dependency pointing one way.

    Host (readers, writer, walk) -> discovery (RecentScan, named by the runtime watcher)
      -> Exporter (/metrics)            -> LimitService (API writes, audited by the Auditor)
                                        <- Enforcer (desired state, drift, repair)

Every part is a constructor argument with a default built from ``Settings``, so a test injects
a vanishing scan, a failing writer or a wrapped runtime client instead of patching privates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Hashable
from datetime import datetime, timezone
from typing import Any

from .collectors import Collector, enabled_collectors
from .cgroup.limitcache import LimitsCache
from .config import Settings
from .deaths.keeper import DeathKeeper
from .deaths.watcher import OomWatcher
from .discovery.inventory import CgroupPath, Container, DiscoveryOptions, Target
from .discovery.recent import RecentScan
from .discovery.live import LiveTree, LiveTreeMetrics
from .enforce.births import BirthWatcher, written_hierarchies
from .enforce.desired import ApiOverrides
from .enforce.engine import Enforcer
from .enforce.policywatch import PolicyFileWatcher
from .enforce.store import DesiredStore
from .errors import CgwatchError, ContainerNotFound
from .exporter import Collection, Exporter
from .fsusage import LayerWalker
from .host.fdlimit import FdBudget
from .host.keptfiles import KeptFiles
from .host.selfcgroup import kept_files_cap, own_memory_limit
from .hostfs import Host
from .limits.service import LimitService
from .runtimes import build_runtimes
from .runtimes.base import OomSource, Runtime, RuntimeContainer
from .runtimes.docker import DockerClient
from .runtimes.registry import Runtimes
from .security.audit import Attempt, AuditLog, Auditor
from .security.statedir import check_state_dir
from .security.token import load_or_create_token
from .views import container_json, listing_json

log = logging.getLogger("cgwatch.agent")


class Agent:
    def __init__(self, settings: Settings, *, host: Host | None = None, docker_client: DockerClient | None = None,
                 runtimes: list[Runtime] | None = None, collectors: list[Collector] | None = None,
                 fs_walker: LayerWalker | None = None):
        """``docker_client`` replaces the Docker adapter's client (a test's wrapped one);
        ``runtimes`` replaces every adapter built from the settings; ``fs_walker`` the
        writable-layer walker (a test's with its own budget)."""
        self.settings = settings
        self.host = host if host is not None else Host(settings.cgroup_root, settings.proc_root)
        self.options = DiscoveryOptions(include_raw=settings.include_raw, ignore=settings.ignore_cgroups)
        adapters = runtimes if runtimes is not None else build_runtimes(settings, docker_client=docker_client)
        # The cgroup tree kept between scans (inotify, a walk at start and every --rewalk-interval);
        # a direct write to a limit file it hears drops the limits /metrics keeps for that cgroup.
        self.tree = LiveTree(self.host.layout.hierarchy_roots(), settings.ignore_cgroups, settings.rewalk_s,
                             modify_roots=written_hierarchies(self.host.layout),
                             on_modify=self._limits_written)
        self.recent = RecentScan(lambda: self.host.scan(self.options, self.runtimes.find, self.tree.paths),
                                 self.host.reader.exists, ignore=self.options.ignore)
        self.fs_walker = fs_walker if fs_walker is not None else LayerWalker(self.host.proc_root)
        # Removed containers' last series kept a while, and the OOM kills that removed them (deaths/).
        keep = settings.removed_retention_s
        # Descriptors kept open for long (OOM registrations, cgroup files re-read with pread) share
        # one budget from RLIMIT_NOFILE; the kept files give theirs back to a registration.
        self.fd_budget = FdBudget.for_process()
        max_kept = settings.max_kept_files if settings.max_kept_files is not None \
            else kept_files_cap(own_memory_limit())
        self.kept_files = KeptFiles(self.fd_budget, max_kept)
        self.oom_watcher = OomWatcher(self.host.layout, budget=self.fd_budget) if keep > 0 else None
        self.deaths = DeathKeeper(keep, watcher=self.oom_watcher, exists=self.host.reader.exists,
                                  lookup=lambda path, cid: self.runtimes.find(path, cid)) if keep > 0 else None
        # /metrics reads limits kept between collections; the limit service and the reconciler read
        # the kernel's live values (host.reader, whose changing files are pread on kept descriptors:
        # a read at offset 0 is as live as a fresh open), and tell the cache what they wrote.
        self.host.reader.keep_files(self.kept_files)
        self.limits_cache = LimitsCache(self.host.reader, settings.limits_refresh_s, identity=self._identity)
        self.exporter = Exporter(self.limits_cache, self.host.proc, self.scan,  # type: ignore[arg-type]
                                 collectors if collectors is not None
                                 else enabled_collectors(settings.disabled_collectors, fs_walker=self.fs_walker),
                                 max_age_s=settings.max_age_s, label_allowlist=settings.label_allowlist,
                                 deaths=self.deaths)
        registry = self.exporter.registry
        registry.register(LiveTreeMetrics(self.tree))
        self.runtimes = Runtimes(adapters, registry)
        if self.deaths is not None:  # the runtimes' own OOM events: a further source of the count
            for adapter in self.runtimes:
                if isinstance(adapter, OomSource):
                    adapter.follow_ooms(self.deaths.runtime_oom)
        check_state_dir(settings.state_dir, settings.token_file)  # before anything in it is trusted
        self.token, self.token_path = load_or_create_token(settings.token_file, settings.state_dir)
        audit_log = AuditLog(settings.state_dir / "audit.log", settings.audit_max_bytes, settings.audit_keep,
                             secret=self.token)
        self.auditor = Auditor(audit_log, registry, refusal_window_s=settings.audit_refusal_window_s)
        self.overrides = ApiOverrides(DesiredStore(settings.state_dir / "desired.json"),
                                      changed=self._enforcement_changed)
        cpus, _ = self.host.proc.machine()
        self.limits = LimitService(resolver=self.recent, reader=self.host.reader, writer=self.host.writer,
                                   auditor=self.auditor, host_cpus=cpus or 1, recorder=self.overrides,
                                   refresher=self.runtimes, runtimes=self.runtimes,
                                   allow_kubernetes=settings.allow_kubernetes_writes, is_v2=self.host.layout.is_v2,
                                   written=self.limits_cache)
        self.enforcer = Enforcer(scan=self.scan, limits=self.limits, reader=self.host.reader,
                                 writer=self.host.writer, overrides=self.overrides,
                                 policy_path=settings.policy_file, registry=registry, naming=self.runtimes)
        # New cgroups get their limits at their mkdir, before the runtime starts their process.
        self.births = BirthWatcher(self.host.layout, self._born, self.enforcer.cgroup_globs,
                                   ignore=settings.ignore_cgroups)
        self.policy_watcher = (PolicyFileWatcher(settings.policy_file, self._policy_file_changed)
                               if settings.policy_file is not None else None)
        self._scheduler: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        log.info("starting", extra={"cgroup_mode": self.host.layout.mode.value,
                                    "cgroup_root": str(self.host.cgroup_root), "proc_root": str(self.host.proc_root),
                                    "token_file": str(self.token_path)})
        if self.oom_watcher is not None:
            self.oom_watcher.start()
        await self.runtimes.start(self._runtime_changed)
        await asyncio.to_thread(self.enforcer.note_start)  # before births: what is there is not born
        self.births.start()
        if self.policy_watcher is not None:
            self.policy_watcher.start()
        await self.fs_walker.start()
        self._start_scheduler()
        await self._first_collection()

    async def _first_collection(self) -> None:
        """Collect once before serving. The containers there at the start are watched for OOM
        kills from their first collection (deaths/keeper.py): without this one, a container
        OOM-killed and removed before the first scrape (Prometheus' first comes up to a scrape
        interval later; an API-only user may never scrape) vanished uncounted. It also pays the
        first collection's extra cost (the walk, every limit, the OOM registrations: 1.75 s at
        3000 containers against 0.82 s for a steady one) before anyone waits for it."""
        try:
            await self.exporter.collection()
        except Exception:  # the first scrape tries again; a start must not fail on it
            log.exception("the first collection failed")

    # -- the periodic passes: scheduled only while there is something to enforce ---------------
    def _start_scheduler(self) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        # APScheduler logs two INFO lines per job run ("Running job", "executed successfully").
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self._loop = asyncio.get_running_loop()
        self._scheduler = AsyncIOScheduler(event_loop=self._loop)
        self._scheduler.start()
        self._sync_jobs()

    def _sync_jobs(self) -> None:
        """Add the reconcile and birth-scan jobs when there is something to enforce (a policy rule, a
        desired record, a change a runtime still has to be told), remove them when the last goes: an
        agent with nothing to enforce runs no timer at all (bench/idle_bench.py). Event loop only."""
        if self._scheduler is None:
            return
        scheduled = self._scheduler.get_job("reconcile") is not None
        if self.enforcer.active() == scheduled:
            return
        if scheduled:
            self._scheduler.remove_job("reconcile")
            self._scheduler.remove_job("birth")
            self.enforcer.rest()
            log.info("nothing to enforce: reconcile passes stopped")
            return
        # coalesce + max_instances=1: a slow pass is never run twice at once nor queued up.
        common = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        self._scheduler.add_job(self._reconcile_all, "interval", seconds=self.settings.reconcile_interval_s,
                                id="reconcile", next_run_time=datetime.now(timezone.utc), **common)
        self._scheduler.add_job(self.enforcer.reconcile_new, "interval", seconds=self.settings.birth_scan_interval_s,
                                id="birth", **common)
        log.info("something to enforce: reconcile passes started",
                 extra={"reconcile_interval_s": self.settings.reconcile_interval_s,
                        "birth_scan_interval_s": self.settings.birth_scan_interval_s})

    def jobs(self) -> list[str]:
        """The periodic jobs scheduled now (ids)."""
        return sorted(job.id for job in self._scheduler.get_jobs()) if self._scheduler is not None else []

    async def _reconcile_all(self) -> None:
        policy = self.enforcer.policy
        await self.enforcer.reconcile_all()  # reloads a policy file whose mtime changed, too
        if self.enforcer.policy is not policy:
            self.births.resync()
        self._sync_jobs()  # the last pending push may have been sent

    def _enforcement_changed(self) -> None:
        """A desired record was stored or removed (any thread: the store fsyncs in a worker)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._sync_jobs)

    def _policy_file_changed(self) -> None:
        if self.enforcer.reload_policy():
            self._policy_changed()

    def _policy_changed(self) -> None:
        self.births.resync()  # the parents the rules' cgroup globs name
        self._sync_jobs()

    async def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        if self.policy_watcher is not None:
            self.policy_watcher.stop()
        await self.births.stop()
        if self.oom_watcher is not None:
            self.oom_watcher.stop()
        await self.fs_walker.stop()
        await self.runtimes.stop()
        await self.auditor.close()  # the counts of coalesced refusals still open
        self.kept_files.close()
        self.tree.close()

    async def _born(self, path: str) -> None:
        """A cgroup made a moment ago (births.py): watched for OOM kills, then given its limits.
        A failure to watch it must not cost it its limits: logged, and the limits go on."""
        if self.deaths is not None:
            try:
                self.deaths.born(path)
            except Exception:  # noqa: BLE001 - isolated: limits at birth matter more
                log.exception("cannot watch a new cgroup for OOM kills", extra={"cgroup": path})
        await self.enforcer.born(path)

    def _identity(self, path: str) -> Hashable | None:
        """What tells ``path``'s cgroup from one made again there: the tree's generation (no
        syscall), or the directory's inode when the tree could not watch and walks instead."""
        return self.tree.generation(path) if self.tree.watching else self.host.reader.identity(path)

    def _limits_written(self, path: str | None) -> None:
        """The tree heard a write to ``path``'s files (None: it lost events, any may have been)."""
        if path is None:
            self.limits_cache.invalidate_all()
        else:
            self.limits_cache.invalidate(path)

    # -- runtimes -----------------------------------------------------------------------------
    async def _runtime_changed(self, runtime: str, container_id: str, container: RuntimeContainer | None) -> None:
        """A container started or was updated: give it its desired limits now, not at the next pass.
        One its runtime no longer lists (``None``) was removed: forget what the API asked for it.
        Either way the limits /metrics keeps for it are read again (a `docker update` is such a change)."""
        self.limits_cache.invalidate_id(container_id)
        if container is None:
            if await asyncio.to_thread(self.overrides.destroyed, container_id):
                log.info("desired limits of a removed container forgotten", extra={"container": container_id})
            return
        if container.running:
            try:
                await self.enforcer.reconcile_id(container_id, f"{runtime}-event")
            except CgwatchError as exc:
                log.warning("birth reconcile failed", extra={"container": container_id, "error": exc.message})

    def scan(self) -> list[Container]:
        """Every container on the host now. Blocking: call from a worker thread."""
        containers = self.recent.scan()
        living = {c.path for c in containers}
        self.limits_cache.retain(living)  # what is kept of the gone, dropped
        self.kept_files.retain(living)
        return containers

    # -- enforcement --------------------------------------------------------------------------
    def reload_policy(self) -> None:
        """SIGHUP: the policy file again, changed or not."""
        self.enforcer.reload_policy(force=True)
        self._policy_changed()

    async def policy(self) -> dict[str, Any]:
        # The shared collection's containers, as for the other reads of the public listener: a
        # flood of this GET walks the host no more often than scrapes do.
        containers = (await self.exporter.collection()).containers
        return {"policy": self.enforcer.policy.to_json(), "error": self.enforcer.policy_error,
                "containers": self.enforcer.governing(containers)}

    async def desired(self, target: Target) -> dict[str, Any]:
        await self._known(target)
        c = await self.limits.find(target)
        d = self.enforcer.desired_for(c)
        record = self.overrides.store.get(c.id)
        return {"id": c.id, "name": c.display_name, "source": d.source if d else None,
                "rule": d.rule.name if d and d.rule else None,
                "limits": record["limits"] if record else (dict(d.rule.limits) if d and d.rule else None),
                "keep_for_name": bool(record and record.get("keep_for_name"))}

    async def release(self, target: Target, attempt: Attempt) -> dict[str, Any]:
        """Forget the API's desired state for a container or cgroup: the policy (if any) governs again."""
        c = await self.limits.find(target)
        removed = await asyncio.to_thread(self.overrides.forget, c)
        await self.auditor.record({"client": attempt.client, "ref": str(target)[:200], "mode": "release", "container_id": c.id,
                                   "container_name": c.display_name, "result": "accepted" if removed else "noop"},
                                  attempt)
        return {"id": c.id, "name": c.display_name, "released": removed}

    # -- reads ----------------------------------------------------------------------------------
    # Reads answer from the exporter's shared collection (--max-age old at most, never two at once)
    # so no flood of them on the public listener walks the host more than scrapes do.
    async def containers_json(self, after: float | None = None) -> bytes:
        """GET /api/v1/containers' body: made once per collection, however many ask for it. With
        ``after`` (a listing's "collection"), from a collection begun after that one: a client that
        takes rates (top, the page) never gets the same readings twice. Bounded like every read:
        never a collection begun before the request, never two at once."""
        since = None if after is None else min(after + 1e-6, time.monotonic())
        return await self.exporter.derived(
            "listing", lambda got: listing_json(got.containers, got.reader, got.at, got.started), since)

    async def container(self, ref: str) -> dict[str, Any]:
        got, c = await self._collected(ref)
        return await asyncio.to_thread(lambda: self._still_there(ref, c, container_json(c, got.reader)))

    async def limits_of(self, target: Target) -> dict[str, Any]:
        """GET .../limits: the kernel's values now (a read after a write shows it), of a container or
        cgroup the shared collection knows (or Docker names): a target nobody knows costs no walk of
        its own."""
        await self._known(target)
        return await self.limits.read(target)

    async def _collected(self, target: Target) -> tuple[Collection, Container]:
        """``target`` in the latest collection, else in one begun after the request (it may be new)."""
        asked = time.monotonic()
        got = await self.exporter.collection()
        try:
            return got, self.recent.find(target, got.containers)
        except ContainerNotFound:
            got = await self.exporter.collection(since=asked)
            return got, self.recent.find(target, got.containers)

    async def _known(self, target: Target) -> None:
        try:
            await self._collected(target)
        except ContainerNotFound:
            # Started a moment ago, its event still in flight: its runtime knows its name already.
            # (A path needs no name: the collection that did not list it began after the request.)
            if isinstance(target, CgroupPath) or await self.runtimes.refresh(target) is None:
                raise

    def _still_there(self, ref: str, c: Container, answer: dict[str, Any]) -> dict[str, Any]:
        """``answer`` about ``c``, unless the cgroup went while it was read (its files then read
        as absent: no usage, no limits), which is a 404, not a container without limits."""
        if not self.host.reader.exists(c.path):
            raise ContainerNotFound(f"{ref!r} was removed while it was read", ref=ref[:200])
        return answer

    def health(self) -> dict[str, Any]:
        stats = self.exporter.last_stats
        docker = self.runtimes.get("docker")
        return {
            "status": "ok",
            "cgroup_mode": self.host.layout.mode.value,
            "docker": None if docker is None else {"connected": docker.connected},
            "runtimes": self.runtimes.health(),
            "last_collection_seconds": None if stats is None else round(stats.duration_s, 6),
        }

    async def inspect(self, ref: str) -> dict[str, Any]:
        """The container's JSON plus the namespaces, ID maps and root filesystem of its init process.
        Found in the shared collection, as the other reads: a flood of inspects walks nothing."""
        got, c = await self._collected(ref)

        def details() -> dict[str, Any]:
            return self._still_there(ref, c, {**container_json(c, got.reader), **self.host.inspector.details(c)})
        return await asyncio.to_thread(details)

    async def processes(self, ref: str, interval_s: float) -> dict[str, Any]:
        """The container's processes; CPU % over ``interval_s`` (0: since each process started)."""
        inspector = self.host.inspector
        _, c = await self._collected(ref)
        first = None
        if interval_s > 0:
            first = await asyncio.to_thread(inspector.snapshot, c)
            await asyncio.sleep(interval_s)
        second = await asyncio.to_thread(inspector.snapshot, c)
        return await asyncio.to_thread(inspector.report, c, first, second)
