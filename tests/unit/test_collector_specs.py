"""Every collector is a table of MetricSpec rows: what it yields is what its table declares."""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import replace

import pytest

from cgwatch.collectors import ALL
from cgwatch.collectors.base import MetricSpec, ScrapeContext, build_families
from cgwatch.hostfs import Host
from tests.conftest import FIXTURES

DEVICE = (("device", lambda d: d["name"]),)
READS = MetricSpec("reads_total", "Reads.", "counter", lambda d: d["reads"], labels=DEVICE)
WRITES = MetricSpec("writes_total", "Writes.", "counter", lambda d: d["writes"], labels=DEVICE)


def fixture_context(kernel: str) -> ScrapeContext:
    tree = FIXTURES / "cgroupfs" / kernel
    host = Host(tree / "cgroup", tree / "proc")
    return ScrapeContext(containers=host.scan(), reader=host.reader, proc=host.proc, now=1712345678.0,
                         label_allowlist=("*",))


@pytest.mark.parametrize("kernel", ["v1", "v2"])
@pytest.mark.parametrize("name", sorted(ALL))
def test_a_collector_yields_exactly_its_spec_rows_in_order(kernel, name):
    collector = ALL[name]()
    families = list(collector.collect(fixture_context(kernel)))
    assert [(f.name, f.help, f.type) for f in families] == [(s.name, s.help, s.type) for s in collector.specs]


def test_every_family_is_declared_by_one_collector_only():
    names = Counter(s.name for cls in ALL.values() for s in cls.specs)
    assert [n for n, count in names.items() if count > 1] == []


def test_a_spec_puts_its_own_labels_before_the_rows():
    usage = MetricSpec("usage", "Usage.", "counter", lambda v: v, labels=(("cpu", "total"),))
    [family] = build_families((usage,), [('id="/a"', 5)])
    assert family.samples == [('cpu="total",id="/a"', 5)]


def test_a_row_without_labels_gets_only_the_specs_labels():
    [family] = build_families((READS,), [("", {"name": "/dev/vda", "reads": 3})])
    assert family.samples == [('device="/dev/vda"', 3)]


def test_label_values_read_from_the_row_are_escaped():
    [family] = build_families((READS,), [('id="/a"', {"name": 'odd"name\\', "reads": 1})])
    assert family.samples == [('device="odd\\"name\\\\",id="/a"', 1)]


def test_a_none_value_is_no_sample_but_the_family_keeps_its_place():
    rows = [('id="/a"', {"name": "/dev/vda", "reads": None, "writes": 2}),
            ('id="/b"', {"name": "/dev/vdb", "reads": 4, "writes": 6})]
    reads, writes = build_families((READS, WRITES), rows)
    assert reads.samples == [('device="/dev/vdb",id="/b"', 4)]
    assert writes.samples == [('device="/dev/vda",id="/a"', 2), ('device="/dev/vdb",id="/b"', 6)]


# What the collectors export over the captured trees (tests/fixtures/cgroupfs/README.md says what
# ran where): the docker shape has a CPU quota, pids.max 64 and two processes; cron and plain/leaf
# have no limits; v1 /docker is a parent with no process of its own.
V1_DOCKER = "/docker/40686f14f3cef51f059747ef6fd6bf2643b9b3a5ffdea33518247d06e53c6c03"


def exported(kernel: str, collector: str, ctx: ScrapeContext | None = None) -> dict[str, list[tuple[str, float]]]:
    families = ALL[collector]().collect(ctx or fixture_context(kernel))
    return {f.name: f.samples for f in families}


def sample_value(samples: list[tuple[str, float]], path: str) -> float | None:
    found = [v for labels, v in samples if f'id="{path}"' in labels]
    assert len(found) <= 1
    return found[0] if found else None


@pytest.mark.parametrize("name", ["container_cpu_cfs_periods_total", "container_cpu_cfs_throttled_periods_total",
                                  "container_cpu_cfs_throttled_seconds_total"])
def test_cfs_counters_are_exported_for_a_cgroup_with_a_quota(name):
    assert sample_value(exported("v1", "cpu")[name], V1_DOCKER) is not None


@pytest.mark.parametrize("kernel", ["v1", "v2"])
@pytest.mark.parametrize("name", ["container_cpu_cfs_periods_total", "container_cpu_cfs_throttled_periods_total",
                                  "container_cpu_cfs_throttled_seconds_total"])
def test_cfs_counters_are_not_exported_for_a_cgroup_without_a_quota(kernel, name):
    samples = exported(kernel, "cpu")[name]
    assert sample_value(samples, "/plain/leaf") is None
    assert sample_value(samples, "/system.slice/cron.service") is None


def test_threads_of_a_parent_cgroup_count_its_descendants():
    # /docker's pids.current counts its child's two tasks, though /docker's own tasks file is empty.
    assert sample_value(exported("v1", "tasks")["container_threads"], "/docker") == 2


def test_threads_of_the_root_fall_back_to_its_own_tasks():
    # The root cgroup has no pids.current (cgroup-v1/pids.rst): its tasks file is counted instead.
    tasks = (FIXTURES / "cgroupfs" / "v1" / "cgroup" / "pids" / "tasks").read_text()
    assert sample_value(exported("v1", "tasks")["container_threads"], "/") == len(tasks.split())


@pytest.mark.parametrize("kernel", ["v1", "v2"])
def test_threads_max_is_pids_max_where_set(kernel):
    samples = exported(kernel, "tasks")["container_threads_max"]
    assert sorted(v for _, v in samples) == [64, 2048]  # the docker and podman shapes


@pytest.mark.parametrize("kernel", ["v1", "v2"])
def test_threads_max_has_no_sample_when_unlimited(kernel):
    assert sample_value(exported(kernel, "tasks")["container_threads_max"], "/plain/leaf") is None


def test_oom_events_equal_the_oom_kill_counter():
    families = exported("v1", "memory")
    assert families["container_oom_events_total"] == families["container_oom_kills_total"]
    assert sample_value(families["container_oom_events_total"], V1_DOCKER) == 1


def test_memory_failures_have_four_samples_a_cgroup_by_type_and_scope():
    samples = [labels for labels, _ in exported("v1", "memory")["container_memory_failures_total"]
               if f'id="{V1_DOCKER}"' in labels]
    assert [labels.split(",id=")[0] for labels in samples] == [
        'failure_type="pgfault",scope="container"', 'failure_type="pgmajfault",scope="container"',
        'failure_type="pgfault",scope="hierarchy"', 'failure_type="pgmajfault",scope="hierarchy"']


def test_root_network_series_leave_out_the_host_ends_of_veth_pairs():
    # The v2 guest's root namespace holds the veth host ends of the three container shapes; their
    # traffic is the containers' own, already counted on the containers' series.
    samples = exported("v2", "network")["container_network_receive_bytes_total"]
    assert [labels for labels, _ in samples if 'id="/"' in labels] == []


def test_container_network_series_keep_eth0_and_leave_out_lo():
    samples = exported("v1", "network")["container_network_receive_bytes_total"]
    assert [labels.split(",")[0] for labels, _ in samples if f'id="{V1_DOCKER}"' in labels] == ['interface="eth0"']


def test_v1_fs_counters_of_a_parent_include_its_descendants():
    # /docker did no I/O itself; its child wrote 4 MiB and read 2 MiB (the _recursive files).
    families = exported("v1", "blkio")
    assert sample_value(families["container_fs_writes_bytes_total"], "/docker") == 4 << 20
    assert sample_value(families["container_fs_reads_bytes_total"], "/docker") == 2 << 20


def test_v1_fs_counters_fall_back_to_the_cgroups_own_files(tmp_path):
    tree = tmp_path / "v1"
    shutil.copytree(FIXTURES / "cgroupfs" / "v1", tree, symlinks=True)
    for f in (tree / "cgroup" / "blkio").rglob("blkio.throttle.io_serv*_recursive"):
        f.unlink()
    host = Host(tree / "cgroup", tree / "proc")
    ctx = ScrapeContext(containers=host.scan(), reader=host.reader, proc=host.proc, now=0.0)
    families = exported("v1", "blkio", ctx)
    assert sample_value(families["container_fs_writes_bytes_total"], V1_DOCKER) == 4 << 20
    assert sample_value(families["container_fs_writes_bytes_total"], "/docker") == 0


def labelled_context(allowlist: tuple[str, ...]) -> ScrapeContext:
    ctx = fixture_context("v1")
    ctx.label_allowlist = allowlist
    ctx.containers = [replace(c, labels={"com.example.team": "payments", "com.example.tier": "web",
                                         "PATH": "/usr/bin", "other": "x"}) if c.path == V1_DOCKER else c
                      for c in ctx.containers]
    return ctx


def test_allowlisted_container_labels_are_on_every_series_of_the_container():
    ctx = labelled_context(("com.example.*",))
    for collector in ("cpu", "memory", "tasks", "spec", "blkio", "network", "info"):
        for name, samples in exported("v1", collector, ctx).items():
            if name.startswith("cgwatch_"):
                continue  # the agent's own series, not a container's
            mine = [labels for labels, _ in samples if f'id="{V1_DOCKER}"' in labels]
            assert mine, name
            assert all('container_label_com_example_team="payments",container_label_com_example_tier="web"'
                       in labels for labels in mine), name


def test_container_labels_outside_the_allowlist_are_not_exported():
    ctx = labelled_context(("com.example.team",))
    [labels] = [labels for labels, _ in exported("v1", "memory", ctx)["container_memory_usage_bytes"]
                if f'id="{V1_DOCKER}"' in labels]
    assert "container_label_com_example_team" in labels
    assert "container_label_com_example_tier" not in labels and "container_label_other" not in labels


def test_an_empty_allowlist_adds_no_label():
    ctx = labelled_context(())
    [c] = [c for c in ctx.containers if c.path == V1_DOCKER]
    assert "container_label_" not in ctx.labels(c)
