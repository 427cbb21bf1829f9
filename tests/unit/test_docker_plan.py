"""What cgwatch asks dockerd for, per change; what Docker cannot say is left for cgroupfs."""

from __future__ import annotations

from dataclasses import replace

from cgwatch.runtimes.docker.plan import plan_update
from cgwatch.model import Limits

NONE = Limits(cpu_period_us=100000, cpu_shares=1024, cpuset_cpus="0-1")
RUN_CPUS = {"NanoCpus": 500000000, "CpuQuota": 0, "CpuPeriod": 0}   # docker run --cpus=0.5
RUN_QUOTA = {"NanoCpus": 0, "CpuQuota": 50000, "CpuPeriod": 100000}  # docker run --cpu-quota=50000
PLAIN: dict = {}


def test_cpus_become_nanocpus_on_a_plain_container():
    plan = plan_update(replace(NONE, cpu_quota_us=50000), NONE, PLAIN, "0-1")
    assert plan.body == {"NanoCpus": 500000000} and plan.unexpressible == []


def test_quota_containers_keep_quota_and_period():
    current = replace(NONE, cpu_quota_us=50000)
    plan = plan_update(replace(NONE, cpu_quota_us=25000), current, RUN_QUOTA, "0-1")
    assert plan.body == {"CpuPeriod": 100000, "CpuQuota": 25000}


def test_clearing_cpu_on_a_quota_container_sends_minus_one():
    plan = plan_update(NONE, replace(NONE, cpu_quota_us=50000), RUN_QUOTA, "0-1")
    assert plan.body == {"CpuPeriod": 100000, "CpuQuota": -1}


def test_clearing_nanocpus_is_unexpressible():
    plan = plan_update(NONE, replace(NONE, cpu_quota_us=50000), RUN_CPUS, "0-1")
    assert plan.body == {} and "cpus" in plan.unexpressible[0]


def test_a_custom_period_on_a_nanocpus_container_is_unexpressible():
    target = replace(NONE, cpu_quota_us=20000, cpu_period_us=50000)
    plan = plan_update(target, replace(NONE, cpu_quota_us=50000), RUN_CPUS, "0-1")
    assert plan.body == {} and "cpu_period_us" in plan.unexpressible[0]


def test_memory_is_always_sent_with_memory_swap():
    current = replace(NONE, memory_limit_bytes=100 << 20, memory_swap_limit_bytes=200 << 20)
    target = replace(NONE, memory_limit_bytes=300 << 20, memory_swap_limit_bytes=400 << 20)
    assert plan_update(target, current, RUN_CPUS, "0-1").body == {"Memory": 300 << 20, "MemorySwap": 400 << 20}
    unlimited_swap = replace(target, memory_swap_limit_bytes=None)
    assert plan_update(unlimited_swap, current, RUN_CPUS, "0-1").body["MemorySwap"] == -1


def test_removing_a_memory_limit_is_unexpressible():
    plan = plan_update(NONE, replace(NONE, memory_limit_bytes=100 << 20), PLAIN, "0-1")
    assert "Memory" not in plan.body and "memory" in plan.unexpressible[0]


def test_clears_use_dockers_spellings():
    current = replace(NONE, memory_reservation_bytes=50 << 20, pids_max=10, cpu_shares=512, cpuset_cpus="1")
    plan = plan_update(NONE, current, PLAIN, "0-1")
    assert plan.body == {"MemoryReservation": -1, "PidsLimit": -1, "CpuShares": 1024, "CpusetCpus": "0-1"}


def test_nothing_changes_nothing_is_sent():
    assert plan_update(NONE, NONE, RUN_CPUS, "0-1").body == {}
