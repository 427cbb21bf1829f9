"""A removed container's last series stay, frozen, for --removed-retention and within a bound; a new
cgroup at its path replaces them at once. The exporter runs over the fixture trees captured from
real v1 and v2 kernels (tests/fixtures/cgroupfs), with a walk that loses a container."""

from __future__ import annotations

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cgwatch.collectors import enabled_collectors
from cgwatch.deaths.keeper import DeathKeeper
from cgwatch.deaths.ledger import KERNEL_SLACK_S, OomRecord
from cgwatch.deaths.retention import DeadContainer, Retained, samples_of
from cgwatch.exporter import Exporter
from cgwatch.exposition import Family
from cgwatch.hostfs import Host
from cgwatch.runtimes.base import RuntimeContainer
from tests.conftest import FIXTURES
from tests.support.agent import samples, value

DOCKER = {"v1": "/docker/40686f14f3cef51f059747ef6fd6bf2643b9b3a5ffdea33518247d06e53c6c03",
          "v2": "/system.slice/docker-40686f14f3cef51f059747ef6fd6bf2643b9b3a5ffdea33518247d06e53c6c03.scope"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Walk:
    """The fixture host's cgroups, less those a test removed."""

    def __init__(self, host: Host):
        self.host = host
        self.removed: set[str] = set()

    def __call__(self):
        return [c for c in self.host.scan() if c.path not in self.removed]


def exporter_over(kernel: str, keeper: DeathKeeper) -> tuple[Exporter, Walk]:
    tree = FIXTURES / "cgroupfs" / kernel
    host = Host(tree / "cgroup", tree / "proc")
    walk = Walk(host)
    return Exporter(host.reader, host.proc, walk, enabled_collectors(), max_age_s=0, deaths=keeper), walk


def series_of(text: str, path: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples if s.labels.get("id") == path}


def one_type_line_per_family(text: str) -> bool:
    names = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    return len(names) == len(set(names))


@pytest.mark.parametrize("kernel", ["v1", "v2"])
def test_a_removed_container_keeps_its_last_series_frozen(kernel):
    clock = Clock()
    exporter, walk = exporter_over(kernel, DeathKeeper(300, clock=clock))
    path = DOCKER[kernel]
    alive = exporter.collect_blocking().decode()
    walk.removed.add(path)
    time.sleep(1.05)  # container_last_seen is whole seconds: the living's moves on, the dead's stays
    clock.now += 10
    dead = exporter.collect_blocking().decode()
    assert series_of(dead, path) == series_of(alive, path) != {}
    assert value(dead, "container_last_seen", id="/") > value(alive, "container_last_seen", id="/")
    assert one_type_line_per_family(dead)
    # Its parent's series (a path its own begins with) are the parent's, once.
    assert len(samples(dead, "container_last_seen", id=path.rsplit("/", 1)[0])) == 1


def test_the_kept_series_go_after_the_retention():
    clock = Clock()
    exporter, walk = exporter_over("v1", DeathKeeper(300, clock=clock))
    exporter.collect_blocking()
    walk.removed.add(DOCKER["v1"])
    clock.now += 1
    assert samples(exporter.collect_blocking().decode(), "container_info", id=DOCKER["v1"])
    clock.now += 299.5
    assert samples(exporter.collect_blocking().decode(), "container_info", id=DOCKER["v1"])
    clock.now += 0.5
    text = exporter.collect_blocking().decode()
    assert series_of(text, DOCKER["v1"]) == {}
    assert one_type_line_per_family(text)


def test_a_new_cgroup_at_the_path_replaces_the_kept_one_at_once():
    clock = Clock()
    exporter, walk = exporter_over("v1", DeathKeeper(300, clock=clock))
    exporter.collect_blocking()
    walk.removed.add(DOCKER["v1"])
    exporter.collect_blocking()
    walk.removed.clear()                    # `docker start` again: a cgroup at the same path
    time.sleep(1.05)
    text = exporter.collect_blocking().decode()
    assert len(samples(text, "container_last_seen", id=DOCKER["v1"])) == 1
    assert value(text, "container_last_seen", id=DOCKER["v1"]) == value(text, "container_last_seen", id="/")


def test_an_oom_kill_after_the_last_scrape_shows_as_one_more_in_the_kept_series():
    clock = Clock()
    keeper = DeathKeeper(300, clock=clock)
    exporter, walk = exporter_over("v1", keeper)
    before = value(exporter.collect_blocking().decode(), "container_oom_kills_total", id=DOCKER["v1"])
    assert before is not None
    rec = keeper.ledger.get(DOCKER["v1"])
    assert rec is not None
    rec.event(clock.now + 0.5, KERNEL_SLACK_S)  # the kernel announced an OOM; the cgroup then went
    walk.removed.add(DOCKER["v1"])
    clock.now += 1
    text = exporter.collect_blocking().decode()
    assert value(text, "container_oom_kills_total", id=DOCKER["v1"]) == before + 1
    assert value(text, "container_oom_events_total", id=DOCKER["v1"]) == before + 1


def test_a_container_seen_only_at_its_birth_is_kept_with_its_name_and_oom_kill():
    clock = Clock()
    path = "/docker/" + "ab" * 32
    known = RuntimeContainer("docker", "ab" * 32, "web", image="nginx")
    keeper = DeathKeeper(300, clock=clock, exists=lambda p: False,
                         lookup=lambda p, cid: known if cid == known.id else None)
    exporter, _ = exporter_over("v1", keeper)
    exporter.collect_blocking()
    keeper.born(path)                       # its mkdir; it is OOM-killed before any collection
    keeper.runtime_oom("docker", known.id)
    clock.now += 1
    text = exporter.collect_blocking().decode()
    assert value(text, "container_oom_kills_total", id=path, name="web", image="nginx") == 1
    assert value(text, "container_info", id=path, name="web", runtime="docker") == 1
    assert value(text, "container_last_seen", id=path) is not None


def test_nothing_is_kept_for_a_path_the_walk_never_listed_while_it_exists():
    keeper = DeathKeeper(300, clock=Clock(), exists=lambda p: True)
    exporter, _ = exporter_over("v1", keeper)
    keeper.born("/docker/" + "cd" * 32)     # made a moment ago; the walk began before its mkdir
    assert series_of(exporter.collect_blocking().decode(), "/docker/" + "cd" * 32) == {}


def dead(path: str, died_at: float) -> DeadContainer:
    labels = f'id="{path}",image="",name=""'
    return DeadContainer(path, died_at, {"container_last_seen": [(labels, 1.0)]}, labels, 0)


def test_at_most_max_kept_dead_are_kept_the_oldest_dropped_first():
    kept = Retained(keep_s=300, max_kept=3)
    dropped = [d.path for i in range(5) for d in kept.add(dead(f"/c{i}", died_at=i))]
    assert dropped == ["/c0", "/c1"]
    assert kept.paths() == ["/c2", "/c3", "/c4"]
    assert len(kept.families()["container_last_seen"]) == 3


def test_the_kept_oom_counters_are_asked_of_their_record_each_time():
    kept = Retained(keep_s=300)
    rec = OomRecord("/c")
    rec.read(2, now=1.0)
    d = dead("/c", died_at=1.0)
    d.record = rec
    kept.add(d)
    assert kept.families()["container_oom_kills_total"] == [(d.labels, 2)]
    rec.died()
    rec.event(2.0, KERNEL_SLACK_S)          # announced after the death was noticed
    assert kept.families()["container_oom_events_total"] == [(d.labels, 3)]


def test_samples_of_takes_only_that_containers_samples():
    base = '{},image="",name="",container="",namespace="",pod=""'
    a, b, parent = (base.format(f'id="{p}"') for p in ("/docker/a", "/docker/ab", "/docker"))
    memory = Family("container_memory_usage_bytes", "", "gauge")   # the container's labels object itself
    for labels in (parent, a, b):
        memory.add(labels, 1.0)
    memory.add(a, 9.0)                  # appended after the collectors (a dead one's, kept): not its own
    usage = Family("container_cpu_usage_seconds_total", "", "counter")  # own labels first
    for labels in (parent, a, b):
        usage.add(f'cpu="total",{labels}', 1.0)
    info = Family("container_info", "", "gauge")                    # own labels after
    info.add(f'{a},runtime="raw",runtime_id="/docker/a"', 1)
    info.add(f'{b},runtime="raw",runtime_id="/docker/a"', 1)  # another's runtime_id: not an id label
    machine = Family("machine_cpu_cores", "", "gauge")
    machine.add("", 2)
    found = samples_of([memory, usage, info, machine], [3, 3, 2, 1], {"/docker/a": a},
                       {id(a), id(b), id(parent)})
    assert found == {"/docker/a": {"container_memory_usage_bytes": [(a, 1.0)],
                                   "container_cpu_usage_seconds_total": [(f'cpu="total",{a}', 1.0)],
                                   "container_info": [(f'{a},runtime="raw",runtime_id="/docker/a"', 1)]}}
