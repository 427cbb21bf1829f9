"""Table tests for the pure parsers: one row per shape the kernel documents or was seen emitting."""

from __future__ import annotations

import pytest

from cgwatch.cgroup.base import shares_from_weight
from cgwatch.cgroup.v1 import memory_from_v1
from cgwatch.cgroup.v2 import memory_from_v2
from cgwatch.collectors.network import is_ignored_interface
from cgwatch.host.cgroupfs import (parse_blkio_throttle, parse_cfs_quota, parse_cpu_max, parse_cpu_stat,
                                   parse_cpuacct_stat, parse_io_stat, parse_pressure, parse_v1_limit)
from cgwatch.host.parse import ParseError, parse_cpu_list, parse_flat_keyed, parse_int, parse_max_int
from cgwatch.host.procfs import (parse_meminfo_total, parse_net_dev, parse_ns_link, parse_partitions,
                                  parse_stat_cpus)


@pytest.mark.parametrize("text, expected", [
    ("50000 100000\n", (50000, 100000)),
    ("max 100000\n", (None, 100000)),
    ("1000 1000", (1000, 1000)),
])
def test_parse_cpu_max(text, expected):
    assert parse_cpu_max(text) == expected


def test_parse_cpu_max_rejects_one_field():
    with pytest.raises(ValueError):
        parse_cpu_max("max\n")


@pytest.mark.parametrize("text, expected", [
    ("104857600\n", 104857600),
    ("9223372036854771712\n", None),     # v1 "unlimited" with 4 KiB pages (seen on the CI host)
    ("9223372036854710272\n", None),     # with 64 KiB pages
    ("-1\n", None),
    ("0\n", 0),
])
def test_parse_v1_limit(text, expected):
    assert parse_v1_limit(text) == expected


@pytest.mark.parametrize("text, expected", [("-1\n", None), ("50000\n", 50000)])
def test_parse_cfs_quota(text, expected):
    assert parse_cfs_quota(text) == expected


@pytest.mark.parametrize("text, expected", [("max\n", None), ("64\n", 64), ("0", 0)])
def test_parse_max_int(text, expected):
    assert parse_max_int(text) == expected


def test_parse_int_rejects_garbage_with_a_domain_error():
    with pytest.raises(ParseError):
        parse_int("abc")


def test_parse_cpuacct_stat_converts_user_hz_ticks_to_ns():
    assert parse_cpuacct_stat(b"user 150\nsystem 25\n", user_hz=100) == (1_500_000_000, 250_000_000)


def test_parse_cpu_stat_v2_with_and_without_cpu_controller():
    full = (b"usage_usec 2000000\nuser_usec 1500000\nsystem_usec 500000\nnr_periods 50\n"
            b"nr_throttled 25\nthrottled_usec 1250000\nnr_bursts 0\nburst_usec 0\n")
    s = parse_cpu_stat(full)
    assert (s.usage_ns, s.user_ns, s.system_ns) == (2_000_000_000, 1_500_000_000, 500_000_000)
    assert (s.periods, s.throttled_periods, s.throttled_ns) == (50, 25, 1_250_000_000)
    # The controller-less unified tree of a hybrid host has only the first three keys.
    bare = parse_cpu_stat(b"usage_usec 10\nuser_usec 6\nsystem_usec 4\n")
    assert bare.periods is None and bare.throttled_ns is None and bare.usage_ns == 10_000


def test_parse_flat_keyed_skips_non_integer_values():
    assert parse_flat_keyed("a 1\nb x\nc 3\n\n") == {"a": 1, "c": 3}


def test_parse_pressure_reads_totals_in_microseconds():
    p = parse_pressure(b"some avg10=0.00 avg60=0.00 avg300=0.10 total=12940433\n"
                       b"full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
    assert (p.some_us, p.full_us) == (12940433, 0)
    # Before Linux 5.13 cpu.pressure had no "full" line.
    assert parse_pressure(b"some avg10=1.00 avg60=0.00 avg300=0.00 total=5\n").full_us is None


def test_parse_blkio_throttle_pairs_bytes_and_ops_per_device():
    bytes_text = b"8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 12288\nTotal 12288\n"
    ops_text = b"8:0 Read 1\n8:0 Write 2\n8:0 Total 3\nTotal 3\n"
    [dev] = parse_blkio_throttle(bytes_text, ops_text)
    assert (dev.device, dev.read_bytes, dev.write_bytes, dev.reads, dev.writes) == ("8:0", 4096, 8192, 1, 2)


def test_parse_io_stat():
    devs = parse_io_stat(b"254:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n"
                         b"7:0 rbytes=5 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n")
    assert [(d.device, d.read_bytes, d.write_bytes) for d in devs] == [("7:0", 5, 0), ("254:0", 1024, 2048)]


@pytest.mark.parametrize("text, expected", [
    ("0-3,5\n", {0, 1, 2, 3, 5}), ("1", {1}), ("", set()), ("0-1", {0, 1}),
])
def test_parse_cpu_list(text, expected):
    assert parse_cpu_list(text) == expected


@pytest.mark.parametrize("text", ["3-1", "a", "0-", "1-x"])
def test_parse_cpu_list_rejects_bad_ranges(text):
    with pytest.raises(ParseError):
        parse_cpu_list(text)


def test_memory_from_v1_working_set_is_usage_minus_inactive_file():
    m = memory_from_v1(100 << 20, {"total_inactive_file": 30 << 20, "total_rss": 60 << 20,
                                   "total_cache": 40 << 20, "total_mapped_file": 1 << 20, "rss": 1},
                       memsw_usage=110 << 20)
    assert m.working_set_bytes == 70 << 20
    assert (m.rss_bytes, m.cache_bytes, m.mapped_file_bytes, m.swap_bytes) == (60 << 20, 40 << 20, 1 << 20, 10 << 20)


def test_working_set_never_negative():
    assert memory_from_v1(10, {"total_inactive_file": 20}, None).working_set_bytes == 0


def test_memory_from_v2_maps_anon_file_and_events():
    m = memory_from_v2(100, {"anon": 60, "file": 40, "file_mapped": 5, "inactive_file": 30},
                       {"max": 7, "oom_kill": 2}, swap_current=3, peak=150)
    assert (m.rss_bytes, m.cache_bytes, m.mapped_file_bytes, m.working_set_bytes) == (60, 40, 5, 70)
    assert (m.failcnt, m.oom_kills, m.swap_bytes, m.max_usage_bytes) == (7, 2, 3, 150)


# Lines of the v1 fixture's /docker memory.stat (tests/fixtures/cgroupfs/v1): a parent with no
# process of its own, whose child faulted 33352 pages.
V1_PARENT_MEMORY_STAT = "pgfault 0\npgmajfault 0\ntotal_pgfault 33352\ntotal_pgmajfault 0\n"


def test_memory_from_v1_page_faults_are_the_cgroups_own_in_container_scope():
    m = memory_from_v1(0, parse_flat_keyed(V1_PARENT_MEMORY_STAT), None)
    assert (m.pgfault, m.pgmajfault) == (0, 0)


def test_memory_from_v1_page_faults_of_the_subtree_are_the_hierarchy_scope():
    m = memory_from_v1(0, parse_flat_keyed(V1_PARENT_MEMORY_STAT), None)
    assert (m.hierarchy_pgfault, m.hierarchy_pgmajfault) == (33352, 0)


def test_memory_from_v2_page_faults_fill_both_scopes():
    # The v2 fixture's docker scope: memory.stat is hierarchical on v2, as cAdvisor reads it.
    m = memory_from_v2(100, parse_flat_keyed("pgfault 6960\npgmajfault 47\n"), {}, None, None)
    assert (m.pgfault, m.pgmajfault, m.hierarchy_pgfault, m.hierarchy_pgmajfault) == (6960, 47, 6960, 47)


@pytest.mark.parametrize("interface, ignored", [
    ("lo", True), ("veth3a1b2c", True), ("veth-docker", True), ("docker0", True), ("nerdctl0", True),
    ("Docker0", True),  # cAdvisor lower-cases before matching
    ("eth0", False), ("ens3", False), ("br-1234abcd", False), ("wlan0", False), ("cni0", False),
])
def test_interfaces_cadvisor_ignores_are_skipped(interface, ignored):
    assert is_ignored_interface(interface) is ignored


@pytest.mark.parametrize("weight, shares", [(1, 2), (10000, 262144), (100, 2597)])
def test_shares_from_weight(weight, shares):
    assert shares_from_weight(weight) == shares


def test_parse_net_dev():
    text = ("Inter-|   Receive                                                |  Transmit\n"
            " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
            "    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n"
            "  eth0:    5000      40    1    2    0     0          0         0     3000      30    3    4    0     0       0          0\n")
    lo, eth0 = parse_net_dev(text)
    assert lo.interface == "lo"
    assert (eth0.interface, eth0.rx_bytes, eth0.rx_packets, eth0.rx_errors, eth0.rx_dropped) == ("eth0", 5000, 40, 1, 2)
    assert (eth0.tx_bytes, eth0.tx_packets, eth0.tx_errors, eth0.tx_dropped) == (3000, 30, 3, 4)


def test_parse_ns_link():
    assert parse_ns_link("net:[4026531992]") == 4026531992
    assert parse_ns_link("garbage") is None


def test_machine_size_from_proc():
    assert parse_stat_cpus("cpu  1 2 3\ncpu0 1 1 1\ncpu1 1 1 1\nintr 5\n") == 2
    assert parse_meminfo_total("MemTotal:       24000000 kB\nMemFree: 1 kB\n") == 24000000 * 1024


def test_parse_partitions_names_devices_by_major_minor():
    text = "major minor  #blocks  name\n\n 254        0  264241152 vda\n   7        0      10240 loop0\n"
    assert parse_partitions(text) == {"254:0": "/dev/vda", "7:0": "/dev/loop0"}
