"""From request and current limits to the complete target: host bounds, field relations, PATCH/PUT/DELETE."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from cgwatch.errors import InvalidLimit
from cgwatch.limits.request import Mode, parse_limit_request
from cgwatch.limits.validate import HostFacts, resolve_target
from cgwatch.model import Limits

MIB = 1 << 20
HOST = HostFacts(cpus=2, allowed_cpus=frozenset({0, 1}))
CURRENT = Limits(cpu_quota_us=50000, cpu_period_us=100000, cpu_shares=512, cpuset_cpus="0",
                 memory_limit_bytes=100 * MIB, memory_reservation_bytes=50 * MIB, memory_high_bytes=90 * MIB,
                 memory_swap_limit_bytes=150 * MIB, pids_max=100)
NO_LIMITS = Limits(cpu_period_us=100000)


def target(body: dict, mode: Mode = Mode.PATCH, current: Limits = CURRENT, host: HostFacts = HOST) -> Limits:
    return resolve_target(parse_limit_request(json.dumps(body).encode(), mode), current, host)


def refused(body: dict, mode: Mode = Mode.PATCH, current: Limits = CURRENT, host: HostFacts = HOST) -> InvalidLimit:
    with pytest.raises(InvalidLimit) as exc:
        target(body, mode, current, host)
    return exc.value


@pytest.mark.parametrize("cpus, quota", [
    (0.5, 50000), ("0.5", 50000), (0.01, 1000), (2, 200000),
    ("0.123456789", 12345),  # whole microseconds, truncated as Docker's daemon does
])
def test_cpus_become_a_quota_over_the_default_period(cpus, quota):
    custom_period = replace(CURRENT, cpu_period_us=20000, cpu_quota_us=10000)
    t = target({"cpus": cpus}, current=custom_period)
    assert (t.cpu_quota_us, t.cpu_period_us) == (quota, 100000)


def test_clearing_cpus_removes_the_quota_and_restores_the_period():
    t = target({"cpus": None}, current=replace(CURRENT, cpu_period_us=20000))
    assert (t.cpu_quota_us, t.cpu_period_us) == (None, 100000)


@pytest.mark.parametrize("cpus", [1e9, 3, "2.000000001", "1e3"])
def test_cpus_above_the_host_cpus_are_refused(cpus):
    err = refused({"cpus": cpus})
    assert (err.field, err.rule) == ("cpus", "max") and "2" in err.message


def test_quota_alone_keeps_the_current_period():
    t = target({"cpu_quota_us": 150000})
    assert (t.cpu_quota_us, t.cpu_period_us) == (150000, 100000)


def test_period_alone_keeps_the_current_quota():
    t = target({"cpu_period_us": 200000})
    assert (t.cpu_quota_us, t.cpu_period_us) == (50000, 200000)


def test_clearing_the_period_restores_the_kernel_default():
    assert target({"cpu_period_us": None}, current=replace(CURRENT, cpu_period_us=20000)).cpu_period_us == 100000


@pytest.mark.parametrize("body, field", [
    ({"cpu_quota_us": 200001}, "cpu_quota_us"),
    ({"cpu_quota_us": 300000, "cpu_period_us": 100000}, "cpu_quota_us"),
    ({"cpu_period_us": 20000}, "cpu_period_us"),  # the current 50000 us quota becomes 2.5 CPUs
])
def test_quota_over_period_above_the_host_cpus_is_refused(body, field):
    err = refused(body)
    assert (err.field, err.rule) == (field, "max")


def test_quota_of_exactly_the_host_cpus_is_allowed():
    assert target({"cpu_quota_us": 200000}).cpu_quota_us == 200000


def test_a_request_not_touching_cpu_bandwidth_does_not_recheck_it():
    over = replace(CURRENT, cpu_quota_us=400000)  # set before the host lost CPUs
    assert target({"pids_limit": 5}, current=over).cpu_quota_us == 400000


def test_cpuset_within_the_allowed_cpus_is_canonical():
    assert target({"cpuset_cpus": "1,0"}).cpuset_cpus == "0-1"


@pytest.mark.parametrize("allowed, cpuset, named", [
    (frozenset({0, 1}), "0-3", "2-3"),     # CPUs the host does not have
    (frozenset({0, 2}), "0-1", "1"),       # an offline CPU, or one the parent's cpuset excludes
])
def test_cpuset_outside_the_allowed_cpus_is_refused_naming_them(allowed, cpuset, named):
    err = refused({"cpuset_cpus": cpuset}, host=HostFacts(cpus=4, allowed_cpus=allowed))
    assert (err.field, err.rule) == ("cpuset_cpus", "range")
    assert err.details["unavailable"] == named and named in err.message


def test_clearing_the_cpuset_inherits_the_parents():
    assert target({"cpuset_cpus": None}).cpuset_cpus is None


@pytest.mark.parametrize("body, field", [
    ({"memory": "64m", "memory_reservation": "128m"}, "memory_reservation"),
    ({"memory_reservation": "101m"}, "memory_reservation"),
    ({"memory": "40m"}, "memory"),  # below the current 50m reservation: the sent field is named
])
def test_reservation_above_memory_is_refused(body, field):
    err = refused(body)
    assert (err.field, err.rule) == (field, "combination")


def test_reservation_without_a_memory_limit_is_allowed():
    assert target({"memory_reservation": "64m"}, Mode.PUT).memory_reservation_bytes == 64 * MIB


@pytest.mark.parametrize("body", [
    {"memory": "64m", "memory_swap": "32m"},
    {"memory_swap": "99m"},
])
def test_swap_below_memory_is_refused(body):
    err = refused(body)
    assert (err.field, err.rule) == ("memory_swap", "combination")


def test_swap_equal_to_memory_means_no_swap_and_is_allowed():
    assert target({"memory": "64m", "memory_swap": "64m"}).memory_swap_limit_bytes == 64 * MIB


@pytest.mark.parametrize("body, mode, current", [
    ({"memory_swap": "128m"}, Mode.PUT, CURRENT),
    ({"memory_swap": "128m"}, Mode.PATCH, replace(CURRENT, memory_limit_bytes=None, memory_swap_limit_bytes=None)),
    ({"memory": None, "memory_swap": "128m"}, Mode.PATCH, CURRENT),
])
def test_swap_without_a_memory_limit_is_refused(body, mode, current):
    err = refused(body, mode, current)
    assert (err.field, err.rule) == ("memory_swap", "combination")


@pytest.mark.parametrize("memory, swap", [("1g", 1024 * MIB + 50 * MIB), ("60m", 110 * MIB)])
def test_patching_memory_keeps_the_swap_allowance(memory, swap):
    t = target({"memory": memory})
    assert t.memory_swap_limit_bytes == swap


def test_patching_memory_keeps_unlimited_swap_unlimited():
    t = target({"memory": "1g"}, current=replace(CURRENT, memory_swap_limit_bytes=None))
    assert (t.memory_limit_bytes, t.memory_swap_limit_bytes) == (1024 * MIB, None)


def test_clearing_memory_clears_the_swap_limit():
    t = target({"memory": None})
    assert (t.memory_limit_bytes, t.memory_swap_limit_bytes) == (None, None)


def test_swap_sent_with_memory_wins_over_the_kept_allowance():
    assert target({"memory": "1g", "memory_swap": -1}).memory_swap_limit_bytes is None
    assert target({"memory": "1g", "memory_swap": "3g"}).memory_swap_limit_bytes == 3072 * MIB


def test_patch_keeps_every_field_not_sent():
    assert target({"pids_limit": 10}) == replace(CURRENT, pids_max=10)


def test_patch_null_clears_just_that_field():
    t = target({"cpu_shares": None, "pids_limit": None})
    assert t == replace(CURRENT, cpu_shares=None, pids_max=None)


def test_put_clears_every_field_not_sent():
    assert target({"pids_limit": 10}, Mode.PUT) == replace(NO_LIMITS, pids_max=10)


def test_put_memory_alone_leaves_swap_unlimited():
    t = target({"memory": "1g"}, Mode.PUT)
    assert (t.memory_limit_bytes, t.memory_swap_limit_bytes) == (1024 * MIB, None)


def test_delete_clears_everything():
    request = parse_limit_request(b"", Mode.DELETE)
    assert resolve_target(request, CURRENT, HOST) == NO_LIMITS


def test_current_is_not_mutated_and_a_new_value_is_returned():
    before = replace(CURRENT)
    for mode, body in [(Mode.PATCH, {"cpus": 1, "memory": "1g", "cpuset_cpus": "1", "pids_limit": 7}),
                       (Mode.PATCH, {"cpu_shares": 4}), (Mode.PUT, {"memory": "64m"})]:
        assert target(body, mode) is not CURRENT
    assert CURRENT == before
