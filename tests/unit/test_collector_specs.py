"""Every collector is a table of MetricSpec rows: what it yields is what its table declares."""

from __future__ import annotations

from collections import Counter

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
