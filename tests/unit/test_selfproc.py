"""The agent's process_* metrics (host/selfproc.py) against client_python's own collector."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cgwatch.host.selfproc import SelfProcessCollector, max_fds, open_fds, parse_stat


def samples(registry: CollectorRegistry) -> dict[str, float]:
    text = generate_latest(registry).decode()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


def test_the_same_families_as_client_pythons_collector():
    mine, theirs = CollectorRegistry(auto_describe=False), CollectorRegistry(auto_describe=False)
    mine.register(SelfProcessCollector())
    ProcessCollector(registry=theirs)
    ours, theirs = samples(mine), samples(theirs)
    assert set(ours) == set(theirs)
    for name in ("process_start_time_seconds", "process_max_fds", "process_open_fds"):
        assert abs(ours[name] - theirs[name]) <= 1, name
    assert ours["process_resident_memory_bytes"] > 0 and ours["process_cpu_seconds_total"] > 0


def test_open_fds_counts_what_this_process_opens():
    before = open_fds()
    fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(50)]
    try:
        assert open_fds() == before + 50 == len(os.listdir("/proc/self/fd")) - 1  # listdir's own fd
    finally:
        for fd in fds:
            os.close(fd)


def test_stat_fields_after_a_command_with_spaces_and_parentheses():
    raw = b"42 (a (b) c) S 1 42 42 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 1 0 1234 5000000 300 " + b"0 " * 30
    cpu, virtual, resident, start = parse_stat(raw)
    assert cpu == 300 / os.sysconf("SC_CLK_TCK")
    assert virtual == 5000000 and resident == 300 * os.sysconf("SC_PAGE_SIZE") and start == 1234


def test_max_fds_is_the_soft_limit():
    raw = (b"Limit                     Soft Limit           Hard Limit           Units     \n"
           b"Max open files            1024                 524288               files     \n")
    assert max_fds(raw) == 1024
    assert max_fds(b"") is None
