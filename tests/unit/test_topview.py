"""`cgwatch ps`/`top`: rates from two readings, selection, order and the text they print."""

from __future__ import annotations

import pytest

from cgwatch.cli.topview import (Reading, cpu_percent, fit, frame_json, human_bytes, printable, rows_between, select,
                                 short_name, sort_rows, table_lines, throttled_percent)

ID_A = "a" * 64
ID_B = "b" * 64


def container(cgroup: str, *, cid: str = "", name: str = "", runtime: str = "docker", started_at: float = 100.0,
              usage_ns: int | None = 0, periods: int | None = 0, throttled: int | None = 0,
              working_set: int | None = 10 << 20, usage_bytes: int | None = 12 << 20, oom_kills: int | None = 0,
              pids: int | None = 1, threads: int | None = 1, quota: int | None = None, period: int = 100000,
              memory_limit: int | None = None, pids_max: int | None = None) -> dict:
    """The shape GET /api/v1/containers returns for one container (cgwatch/views/container.py)."""
    return {
        "id": cid or cgroup, "name": name or cid or cgroup, "runtime": runtime, "cgroup": cgroup,
        "started_at": started_at,
        "usage": {
            "cpu": {"usage_ns": usage_ns, "periods": periods, "throttled_periods": throttled},
            "memory": {"usage_bytes": usage_bytes, "working_set_bytes": working_set, "oom_kills": oom_kills},
            "tasks": {"processes": 1, "threads": threads, "pids_current": pids},
        },
        "limits": {"cpu_quota_us": quota, "cpu_period_us": period, "cpus": quota / period if quota else None,
                   "memory_limit_bytes": memory_limit, "pids_max": pids_max},
    }


@pytest.mark.parametrize("before, after, seconds, expected", [
    (0, 1_000_000_000, 1.0, 100.0),        # one CPU-second per second: one full CPU
    (0, 1_000_000_000, 2.0, 50.0),
    (5, 2_000_000_005, 1.0, 200.0),        # two CPUs busy
    (10, 10, 1.0, 0.0),
    (10, 5, 1.0, None),                    # went backwards: a reset, no rate
    (None, 5, 1.0, None),
    (0, 5, 0.0, None),                     # no time passed
])
def test_cpu_percent(before, after, seconds, expected):
    assert cpu_percent(before, after, seconds) == expected


@pytest.mark.parametrize("periods, throttled, expected", [
    ((100, 110), (20, 25), 50.0),          # 5 of 10 periods throttled
    ((100, 110), (20, 20), 0.0),
    ((100, 100), (20, 20), 0.0),           # no period elapsed (idle): not throttled
    ((100, 90), (20, 25), None),           # counter reset
    ((None, 110), (20, 25), None),
])
def test_throttled_percent(periods, throttled, expected):
    assert throttled_percent(periods[0], periods[1], throttled[0], throttled[1]) == expected


def test_rows_between_computes_rates_over_the_time_between_readings():
    before = Reading(10.0, [container("/docker/" + ID_A, cid=ID_A, usage_ns=0, periods=0, throttled=0,
                                      quota=50000)])
    after = Reading(12.0, [container("/docker/" + ID_A, cid=ID_A, usage_ns=1_000_000_000, periods=20,
                                     throttled=5, quota=50000, memory_limit=40 << 20)])
    [row] = rows_between(before, after)
    assert row.cpu_percent == 50.0
    assert row.throttled_percent == 25.0
    assert row.cpus_limit == 0.5
    assert row.memory_bytes == 10 << 20 and row.memory_limit_bytes == 40 << 20
    assert row.memory_percent == 25.0


def test_a_recreated_cgroup_gets_no_rate():
    # Same path, new start time: the counters started again from zero; a delta would be nonsense.
    before = Reading(0.0, [container("/docker/" + ID_A, usage_ns=9_000_000_000, started_at=100.0)])
    after = Reading(1.0, [container("/docker/" + ID_A, usage_ns=10_000_000_000, started_at=200.0)])
    assert rows_between(before, after)[0].cpu_percent is None


def test_a_new_container_has_levels_but_no_rates():
    after = Reading(1.0, [container("/docker/" + ID_B, cid=ID_B, usage_ns=5)])
    [row] = rows_between(Reading(0.0, []), after)
    assert row.cpu_percent is None and row.memory_bytes == 10 << 20


def test_throttling_is_unknown_without_a_quota():
    before = Reading(0.0, [container("/x")])
    after = Reading(1.0, [container("/x", periods=0, throttled=0)])
    assert rows_between(before, after)[0].throttled_percent is None


def test_memory_falls_back_to_usage_without_a_working_set():
    [row] = rows_between(None, Reading(0.0, [container("/x", working_set=None, usage_bytes=7)]))
    assert row.memory_bytes == 7 and row.memory_percent is None


def test_pids_fall_back_to_threads_without_the_pids_controller():
    [row] = rows_between(None, Reading(0.0, [container("/x", pids=None, threads=4)]))
    assert row.pids == 4


def rows(*specs):
    return rows_between(None, Reading(0.0, [container(**s) for s in specs]))


def test_select_keeps_containers_unless_everything_is_asked_for():
    found = rows({"cgroup": "/", "runtime": "raw"}, {"cgroup": "/system.slice/cron.service", "runtime": "systemd"},
                 {"cgroup": "/docker/" + ID_A, "cid": ID_A})
    assert [r.cgroup for r in select(found)] == ["/docker/" + ID_A]
    assert len(select(found, everything=True)) == 3


def test_select_matches_a_glob_on_name_id_or_cgroup():
    found = rows({"cgroup": "/t-1/docker/" + ID_A, "cid": ID_A, "name": "web"},
                 {"cgroup": "/docker/" + ID_B, "cid": ID_B, "name": "db"})
    assert [r.name for r in select(found, match="web")] == ["web"]
    assert [r.name for r in select(found, match="*/t-1/*")] == ["web"]
    assert [r.name for r in select(found, match="bbbb*")] == ["db"]


def test_sort_puts_the_busiest_first_and_unknown_last():
    a = container("/a", name="a", working_set=1)
    b = container("/b", name="b", working_set=3)
    c = container("/c", name="c", working_set=None, usage_bytes=None)
    found = rows_between(None, Reading(0.0, [a, b, c]))
    assert [r.name for r in sort_rows(found, "memory")] == ["b", "a", "c"]
    assert [r.name for r in sort_rows(found, "name")] == ["a", "b", "c"]


def test_sort_by_cpu_uses_the_rate():
    before = Reading(0.0, [container("/a", name="a", usage_ns=0), container("/b", name="b", usage_ns=0)])
    after = Reading(1.0, [container("/a", name="a", usage_ns=10**8), container("/b", name="b", usage_ns=9 * 10**8)])
    assert [r.name for r in sort_rows(rows_between(before, after), "cpu")] == ["b", "a"]


@pytest.mark.parametrize("n, text", [
    (None, "-"), (100, "100B"), (1536, "1.5KiB"), (10 << 20, "10.0MiB"), (3 << 30, "3.0GiB"),
])
def test_human_bytes(n, text):
    assert human_bytes(n) == text


def test_short_name_shortens_only_docker_ids():
    assert short_name(ID_A) == "a" * 12
    assert short_name("web") == "web"


def test_control_characters_never_reach_the_terminal():
    assert printable("evil\x1b[2Jname\n") == "evil?[2Jname?"


def test_fit_keeps_the_end_of_a_cgroup_path():
    assert fit("/cgwatch-test-1/docker", 10) == "~-1/docker"
    assert fit("a-long-container-name", 8) == "a-long-~"


def test_table_has_one_line_per_row_under_the_header():
    lines = table_lines(rows({"cgroup": "/docker/" + ID_A, "cid": ID_A, "memory_limit": 64 << 20, "pids_max": 10}))
    assert lines[0].split()[:3] == ["NAME", "RUNTIME", "CPU"]
    assert lines[1].startswith("aaaaaaaaaaaa ")
    assert "10.0MiB / 64.0MiB" in lines[1] and "1 / 10" in lines[1]


def test_frame_json_says_where_the_numbers_come_from():
    doc = frame_json(rows({"cgroup": "/x"}), source="agent API http://127.0.0.1:9339", sort="cpu", interval_s=1.2345)
    assert doc["source"] == "agent API http://127.0.0.1:9339"
    assert doc["interval_seconds"] == 1.234 or doc["interval_seconds"] == 1.235
    assert doc["cpu_percent_of"] == "one CPU"
    assert doc["containers"][0]["cgroup"] == "/x"
