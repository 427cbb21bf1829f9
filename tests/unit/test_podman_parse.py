"""Pure pieces of the Podman adapter, on JSON captured from Podman 4.3.1 here
(tests/fixtures/podman/capture.py): libpod JSON -> PodmanContainer / PodmanEvent, and the update planner."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

import pytest

from cgwatch.model import Limits
from cgwatch.runtimes.docker.stream import JsonStreamDecoder
from cgwatch.runtimes.podman.adapter import PodmanWatcher
from cgwatch.runtimes.podman.client import _socket_path
from cgwatch.runtimes.podman.parsing import (
    PodmanEvent,
    parse_container,
    parse_event,
    parse_list_entry,
    parse_version,
)
from cgwatch.runtimes.podman.plan import plan_update, record_note, update_unsupported
from tests.conftest import FIXTURES

DIR = FIXTURES / "podman"


def load(name: str):
    return json.loads((DIR / name).read_text())


def events() -> list:
    return JsonStreamDecoder().feed((DIR / "events.ndjson").read_bytes())


# -- containers ---------------------------------------------------------------------------------

def test_inspect_of_a_running_container():
    data = load("inspect-running.json")
    c = parse_container(data)
    assert c.id == data["Id"] and len(c.id) == 64
    assert c.name.startswith("cgw-test-")
    assert c.image == "localhost/local/busybox:latest"
    assert c.labels == {"com.example.team": "payments", "tier": "web"}
    assert c.running is True
    started = datetime.fromisoformat(data["State"]["StartedAt"][:26] + "+00:00").timestamp()
    assert c.started_at == pytest.approx(started, abs=1e-6)  # nanoseconds kept, not just seconds


def test_inspect_of_a_created_container_has_no_start_time():
    c = parse_container(load("inspect-created.json"))
    assert (c.running, c.started_at, c.labels) == (False, None, {"tier": "batch"})


def test_list_entries_name_the_same_containers_as_inspect():
    by_id = {c.id: c for c in map(parse_list_entry, load("list.json"))}
    for doc in ("inspect-running.json", "inspect-created.json"):
        inspected = parse_container(load(doc))
        listed = by_id[inspected.id]
        assert (listed.name, listed.image, listed.labels, listed.running) == \
               (inspected.name, inspected.image, inspected.labels, inspected.running)
        # The list has whole seconds, and Go's zero time for "never started".
        assert listed.started_at == (int(inspected.started_at) if inspected.started_at else None)


@pytest.mark.parametrize("bad", [{}, {"Id": ""}, {"Id": 7}, [], "x"])
def test_a_container_without_an_id_is_refused(bad):
    with pytest.raises(ValueError):
        parse_container(bad)
    with pytest.raises(ValueError):
        parse_list_entry(bad)


def test_a_bad_start_time_costs_only_that_field():
    data = {**load("inspect-running.json")}
    data["State"] = {**data["State"], "StartedAt": "yesterday"}
    c = parse_container(data)
    assert c.started_at is None and c.name.startswith("cgw-test-")


# -- events ---------------------------------------------------------------------------------------

def test_captured_events_parse_with_libpods_action_names():
    parsed = [parse_event(obj) for obj in events()]
    actions = [e.action for e in parsed]
    assert actions[:3] == ["create", "init", "start"] and actions[-1] == "remove"
    assert "died" in actions and "die" not in actions     # the libpod endpoint's word, not Docker's
    assert "rename" in actions and "restart" in actions
    assert len({e.id for e in parsed}) == 1 and len(parsed[0].id) == 64
    first = parsed[0]
    assert first.name.startswith("cgw-test-")
    assert first.time == events()[0]["timeNano"] / 1e9   # nanoseconds, not the whole-second "time"


def test_the_watcher_refreshes_on_state_changes_and_drops_on_remove():
    acting = {e.action for e in map(parse_event, events())}
    assert {"create", "init", "start", "died", "rename", "restart"} <= PodmanWatcher.refresh_actions
    assert PodmanWatcher.remove_actions == {"remove"}
    # Every captured action is either followed or knowingly ignored.
    ignored = {"exec", "exec_died", "pause", "unpause", "kill", "cleanup"}
    assert acting <= PodmanWatcher.refresh_actions | PodmanWatcher.remove_actions | ignored


def test_events_split_anywhere_decode_the_same():
    raw = (DIR / "events.ndjson").read_bytes()
    dec = JsonStreamDecoder()
    objs = [o for i in range(0, len(raw), 7) for o in dec.feed(raw[i:i + 7])] + dec.flush()
    assert [parse_event(o) for o in objs] == [parse_event(o) for o in events()]


def test_non_container_events_are_skipped_and_broken_ones_refused():
    assert parse_event({"Type": "image", "Action": "pull", "Actor": {"ID": "sha"}}) is None
    assert parse_event({"Type": "container", "status": "start", "id": "abc"}) == PodmanEvent("start", "abc")
    for bad in ([], {"Type": "container", "Action": "start"}, {"Type": "container", "Actor": {"ID": "x"}}):
        with pytest.raises(ValueError):
            parse_event(bad)


@pytest.mark.parametrize("text, expected", [
    ((DIR / "version.txt").read_text(), (4, 3, 1)),
    ("5.0.0-dev", (5, 0, 0)),
    ("4.3", (4, 3, 0)),
    ("", None),
    (None, None),
    ("libpod", None),
])
def test_parse_version(text, expected):
    assert parse_version(text) == expected


@pytest.mark.parametrize("host, path", [
    ("unix:///run/podman/podman.sock", "/run/podman/podman.sock"),
    ("/tmp/x/podman.sock", "/tmp/x/podman.sock"),
])
def test_hosts(host, path):
    assert _socket_path(host) == path


@pytest.mark.parametrize("host", ["tcp://127.0.0.1:8080", "unix://", "podman.sock"])
def test_bad_hosts_are_refused(host):
    with pytest.raises(ValueError):
        _socket_path(host)


# -- the update planner ---------------------------------------------------------------------------

NONE = Limits(cpu_period_us=100000, cpu_shares=1024, cpuset_cpus="0-1")


def test_nothing_differs_nothing_is_sent():
    assert plan_update(NONE, NONE, "0-1").resources == {}


def test_cpus_and_memory_as_the_real_parts_check_sends_them():
    target = replace(NONE, cpu_quota_us=50000, memory_limit_bytes=100 << 20)
    assert plan_update(target, NONE, "0-1").resources == {"cpu": {"quota": 50000, "period": 100000},
                                                     "memory": {"limit": 100 << 20}}


def test_quota_and_period_always_go_together():
    current = replace(NONE, cpu_quota_us=50000)
    assert plan_update(replace(current, cpu_period_us=50000), current, None).resources == \
        {"cpu": {"quota": 50000, "period": 50000}}
    assert plan_update(NONE, current, None).resources == {"cpu": {"quota": -1, "period": 100000}}


def test_swap_goes_with_every_memory_change_where_a_swap_limit_is():
    # runc writes memory before swap: 100m -> 300m alone is refused while memory+swap is 200m.
    current = replace(NONE, memory_limit_bytes=100 << 20, memory_swap_limit_bytes=200 << 20)
    target = replace(current, memory_limit_bytes=300 << 20, memory_swap_limit_bytes=400 << 20)
    assert plan_update(target, current, None).resources == {"memory": {"limit": 300 << 20, "swap": 400 << 20}}
    unlimited_swap = replace(target, memory_swap_limit_bytes=None)
    assert plan_update(unlimited_swap, current, None).resources == {"memory": {"limit": 300 << 20, "swap": -1}}


def test_no_swap_limit_before_or_after_sends_no_swap():
    target = replace(NONE, memory_limit_bytes=300 << 20)
    assert plan_update(target, replace(NONE, memory_limit_bytes=100 << 20), None).resources == \
        {"memory": {"limit": 300 << 20}}


def test_a_swap_change_alone_still_sends_the_memory_limit():
    # runc on cgroup v2 refuses a swap value without a memory limit to subtract.
    current = replace(NONE, memory_limit_bytes=100 << 20, memory_swap_limit_bytes=200 << 20)
    target = replace(current, memory_swap_limit_bytes=300 << 20)
    assert plan_update(target, current, None).resources == {"memory": {"limit": 100 << 20, "swap": 300 << 20}}


def test_podman_can_remove_a_memory_limit():
    current = replace(NONE, memory_limit_bytes=100 << 20, memory_swap_limit_bytes=200 << 20)
    plan = plan_update(NONE, current, None)
    assert plan.resources == {"memory": {"limit": -1, "swap": -1}} and plan.unexpressible == []


def test_clears_use_runcs_spellings():
    current = replace(NONE, memory_reservation_bytes=50 << 20, pids_max=10, cpu_shares=512, cpuset_cpus="1")
    assert plan_update(NONE, current, "0-1").resources == {
        "cpu": {"shares": 1024, "cpus": "0-1"}, "memory": {"reservation": -1}, "pids": {"limit": -1}}


def test_sets_use_runcs_spellings():
    target = replace(NONE, memory_reservation_bytes=50 << 20, pids_max=100, cpu_shares=512, cpuset_cpus="1")
    assert plan_update(target, NONE, "0-1").resources == {
        "cpu": {"shares": 512, "cpus": "1"}, "memory": {"reservation": 50 << 20}, "pids": {"limit": 100}}


def test_a_cleared_cpuset_without_the_parents_cpus_is_left_to_cgroupfs():
    assert plan_update(replace(NONE, cpuset_cpus=None), NONE, None).resources == {}


def test_memory_high_is_named_as_unexpressible():
    plan = plan_update(replace(NONE, memory_high_bytes=None), replace(NONE, memory_high_bytes=64 << 20), None)
    assert plan.resources == {} and "memory_high" in plan.unexpressible[0]


@pytest.mark.parametrize("version, unsupported, unrecorded", [
    ((4, 2, 1), True, True),
    ((4, 3, 1), False, True),
    ((5, 0, 3), False, True),
    ((5, 1, 0), False, False),
    (None, False, True),
])
def test_what_the_reply_says_about_podmans_own_record(version, unsupported, unrecorded):
    assert (update_unsupported(version) is not None) == unsupported
    note = record_note(version)
    assert (note is not None) == unrecorded
    if note:
        assert "podman inspect" in note
