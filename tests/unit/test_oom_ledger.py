"""The OOM count's merge: the kernel's counter wins while the cgroup lives, an OOM event adds only
the kill the counter could no longer show, never twice; and the /proc/vmstat parser."""

from __future__ import annotations

import pytest

from cgwatch.deaths.ledger import EXITING_GAP_S, KERNEL_SLACK_S, RUNTIME_SLACK_S, SETTLE_S, OomLedger, OomRecord
from cgwatch.host.procfs import parse_vmstat_oom_kills

# Excerpt of /proc/vmstat on this project's CI host (Linux 6.18, `sed -n '1,5p;94,97p;123,127p'
# /proc/vmstat`), the host having seen 74 OOM kills since boot.
VMSTAT_6_18 = """\
nr_free_pages 1082402
nr_free_pages_blocks 967168
nr_zone_inactive_anon 457444
pgfault 115424817
pgmajfault 15788
drop_pagecache 1
drop_slab 2
oom_kill 74
numa_pte_updates 0
"""


@pytest.mark.parametrize("text, expected", [
    (VMSTAT_6_18, 74),
    ("oom_kill 0\n", 0),
    ("pgfault 1\npgmajfault 2\n", None),          # before Linux 4.13: no count
    ("oom_kill_other 5\noom_kill 3\n", 3),        # the key, not a prefix of it
])
def test_parse_vmstat_oom_kills(text, expected):
    assert parse_vmstat_oom_kills(text) == expected


def record() -> OomRecord:
    rec = OomRecord("/docker/a", "docker", "a")
    rec.read(0, now=100.0)
    return rec


def test_the_kernels_counter_is_the_value_while_the_cgroup_lives():
    rec = record()
    rec.event(101.0, KERNEL_SLACK_S)       # announced; its kill is not counted yet
    assert rec.total() == 0
    rec.read(1, now=101.01)
    rec.read(3, now=102.0)                 # kills the watcher heard nothing about still count
    assert rec.total() == 3


def test_an_oom_the_counter_confirmed_adds_nothing_when_the_cgroup_goes():
    rec = record()
    rec.event(101.0, KERNEL_SLACK_S)
    rec.read(1, now=101.002)
    rec.died()
    assert rec.total() == 1


def test_an_oom_the_counter_never_showed_is_the_kill_that_ended_the_container():
    rec = record()
    rec.event(101.0, KERNEL_SLACK_S)       # v1's notification comes before the kill
    rec.read(0, now=101.0005)              # read at once: not counted yet
    rec.died()                             # and the cgroup was gone before the next read
    assert rec.total() == 1


def test_an_oom_without_a_kill_settles_while_the_cgroup_lives():
    rec = record()
    rec.event(101.0, KERNEL_SLACK_S)
    rec.read(0, now=101.0 + SETTLE_S)      # still there, still 0: nothing was killed
    assert not rec.pending
    rec.died()
    assert rec.total() == 0


def test_the_runtimes_event_after_the_kernels_is_the_same_oom():
    rec = record()
    rec.event(101.0, KERNEL_SLACK_S)       # the kernel's notification
    rec.event(101.05, RUNTIME_SLACK_S)     # dockerd's oom, from the same OOM
    rec.died()
    assert rec.total() == 1


def test_a_runtime_event_after_the_death_adds_the_kill_once():
    rec = record()
    rec.died()
    rec.event(105.0, RUNTIME_SLACK_S)
    rec.event(105.1, RUNTIME_SLACK_S)
    assert rec.total() == 1


def test_a_runtime_event_after_a_counted_kill_is_not_counted_again():
    rec = record()
    rec.read(1, now=101.0)                 # the collection read the kill before the cgroup went
    rec.died()
    rec.event(101.3, RUNTIME_SLACK_S)      # dockerd's oom arrives after the death was noticed
    assert rec.total() == 1


def test_a_kernel_notification_for_an_earlier_rise_is_not_a_new_oom():
    rec = record()
    rec.read(1, now=101.0)
    rec.event(101.0 + KERNEL_SLACK_S / 2, KERNEL_SLACK_S)
    rec.died()
    assert rec.total() == 1


def test_the_notifications_while_the_victim_exits_are_its_oom_not_a_kill_more():
    # A trace of tests/real/test_oom_docker.py (v1, dockerd, a shell holding 200 MB under 50 MiB):
    # the kernel's notification, the kill counted 2.5 ms later, then a notification every few ms
    # while the victim frees its memory, none confirmed by the counter (they killed nothing), and
    # the cgroup gone with the victim. On a loaded host the storm outlasts KERNEL_SLACK_S.
    rec = record()
    rec.event(101.0, KERNEL_SLACK_S)
    rec.read(0, now=101.0)
    rec.read(1, now=101.0025)
    t = 101.003
    while t < 101.4:
        rec.event(t, KERNEL_SLACK_S)
        rec.read(1, now=t)
        t += 0.03
    rec.event(101.6, RUNTIME_SLACK_S)      # dockerd's oom
    rec.died()
    assert rec.total() == 1


def test_a_notification_after_the_victims_exit_is_a_new_oom():
    rec = record()
    rec.event(101.0, KERNEL_SLACK_S)
    rec.read(1, now=101.002)
    rec.event(101.002 + EXITING_GAP_S * 2, KERNEL_SLACK_S)  # a quiet gap: another OOM
    rec.died()                             # the container went before a read showed its kill
    assert rec.total() == 2


def test_an_oom_long_after_an_earlier_kill_is_a_new_one():
    rec = record()
    rec.read(1, now=101.0)                 # a child process killed; the container lived on
    rec.event(160.0, KERNEL_SLACK_S)       # a minute later the main process, and the cgroup went
    rec.died()
    assert rec.total() == 2


def test_the_count_never_falls_below_what_was_exported():
    rec = OomRecord("/docker/a")           # the watcher could not read it (no registration)
    assert rec.total(exported=2) == 2
    rec.died()
    assert rec.total(exported=2) == 2
    assert OomRecord("/x").total() is None


def test_a_cgroup_made_again_at_the_path_gets_a_record_of_its_own():
    ledger = OomLedger()
    old = ledger.open("/docker/a", "docker", "a")
    old.read(1, now=1.0)
    new = ledger.open("/docker/a", "docker", "a")   # `docker restart`: same path, same ID
    new.read(0, now=2.0)
    ledger.forget(old)                     # the old generation's retention ends
    assert ledger.get("/docker/a") is new
    assert ledger.runtime_event("docker", "a", now=3.0) and new.pending and not old.pending
    assert new.total() == 0 and old.total() == 1


def test_a_runtime_event_for_an_unknown_container_is_reported_as_such():
    ledger = OomLedger()
    ledger.open("/docker/a", "docker", "a")
    assert not ledger.runtime_event("docker", "b", now=1.0)
    assert not ledger.runtime_event("podman", "a", now=1.0)
