"""The refusal coalescer's window logic, on an injected clock: counts always sum to the attempts."""

from __future__ import annotations

from cgwatch.security.coalesce import OVERFLOW, RefusalCoalescer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


KEY = ("127.0.0.1", "unauthorized", "patch", "/api/v1/containers/web/limits")


def entry(client: str = "127.0.0.1") -> dict:
    return {"client": client, "ref": "web", "mode": "patch", "path": KEY[3], "result": "rejected",
            "error": {"error": "unauthorized"}}


def coalescer(clock: Clock, **kw) -> RefusalCoalescer:
    return RefusalCoalescer(**{"window_s": 10.0, "burst": 3, **kw}, clock=clock)


def admit_n(c: RefusalCoalescer, n: int, key=KEY) -> list[dict]:
    """Every line handed out for ``n`` refusals of ``key`` (written now, and summaries)."""
    lines = []
    for _ in range(n):
        line, closed = c.admit(key, entry(key[0]))
        lines += closed + ([line] if line is not None else [])
    return lines


def test_a_single_refusal_is_a_line_at_once_with_count_1():
    c = coalescer(Clock())
    assert admit_n(c, 1) == [{**entry(), "count": 1}]
    assert c.drain() == []


def test_repeats_past_the_burst_are_counted_not_written():
    c = coalescer(Clock())
    assert [line["count"] for line in admit_n(c, 1000)] == [1, 1, 1]


def test_the_count_is_written_at_the_first_refusal_after_the_window_closes():
    clock = Clock()
    c = coalescer(clock)
    admit_n(c, 10)
    clock.now += 10.0
    line, closed = c.admit(KEY, entry())
    assert [x["count"] for x in closed] == [7] and "coalesced_since" in closed[0]
    assert line is not None and line["count"] == 1  # a new window opens with this one


def test_due_closes_windows_when_their_time_is_up_and_not_before():
    clock = Clock()
    c = coalescer(clock)
    admit_n(c, 5)
    clock.now += 9.9
    assert c.due() == [] and c.next_deadline() == 1010.0
    clock.now += 0.1
    assert [x["count"] for x in c.due()] == [2]
    assert c.next_deadline() is None


def test_a_window_without_repeats_past_the_burst_closes_without_a_line():
    clock = Clock()
    c = coalescer(clock)
    admit_n(c, 3)
    clock.now += 11
    assert c.due() == [] and c.next_deadline() is None


def test_drain_writes_every_open_count_so_nothing_is_lost_at_shutdown():
    clock = Clock()
    c = coalescer(clock)
    other = ("10.0.0.9", *KEY[1:])
    lines = admit_n(c, 50) + admit_n(c, 20, other)
    lines += c.drain()
    assert sum(line["count"] for line in lines) == 70
    assert c.next_deadline() is None


def test_distinct_keys_have_their_own_windows():
    c = coalescer(Clock())
    lines = admit_n(c, 4) + admit_n(c, 4, (KEY[0], KEY[1], "put", KEY[3]))
    assert len(lines) == 6


def test_past_max_keys_new_keys_share_one_overflow_line_per_cause():
    clock = Clock()
    c = coalescer(clock, burst=1, max_keys=4)
    lines = []
    for i in range(1000):
        lines += admit_n(c, 1, (f"10.0.{i // 256}.{i % 256}", *KEY[1:]))
    assert len(lines) == 5  # four keys, then one overflow line
    assert lines[-1]["client"] == OVERFLOW and lines[-1]["path"] == OVERFLOW
    lines += c.drain()
    assert sum(line["count"] for line in lines) == 1000


def test_counts_sum_to_the_attempts_across_many_windows():
    clock = Clock()
    c = coalescer(clock)
    lines = []
    for _ in range(2000):
        lines += admit_n(c, 1)
        clock.now += 0.037
    lines += c.drain()
    assert sum(line["count"] for line in lines) == 2000
    assert len(lines) <= 8 * 4  # 74 s: eight windows, each at most burst + 1 lines
