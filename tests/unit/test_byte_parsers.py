"""The per-scrape parsers take the bytes a read returned (no decode) and parse only the keys used:
table tests of their edge cases, and agreement with the text parsers on real kernels' files."""

from __future__ import annotations

import pytest

from cgwatch.host.cgroupfs import parse_blkio_throttle, parse_cpuacct_stat, parse_io_stat, parse_pressure
from cgwatch.host.parse import FlatKeys, ParseError, parse_flat_keyed, parse_int, parse_max_int
from cgwatch.model import Pressure
from tests.conftest import FIXTURES

TREES = FIXTURES / "cgroupfs"
FLAT_KEYED = ("memory.stat", "cpu.stat", "cpuacct.stat", "memory.events", "memory.oom_control")


@pytest.mark.parametrize("data, expected", [
    (b"104857600\n", 104857600),
    (b"104857600", 104857600),          # no trailing newline
    (b"0\n", 0),
    (b"-1\n", -1),                      # cpu.cfs_quota_us
])
def test_parse_int_takes_bytes_as_read(data, expected):
    assert parse_int(data) == expected


@pytest.mark.parametrize("data", [b"", b"\n", b"max\n", b"12 34\n"])
def test_parse_int_rejects_what_is_not_one_integer(data):
    with pytest.raises(ParseError):
        parse_int(data)


@pytest.mark.parametrize("data, expected", [
    (b"max\n", None), (b"max", None), (b"64\n", 64), (b"0", 0),
    ("max\n", None), ("64\n", 64),      # text, as the limit reads pass it
])
def test_parse_max_int_takes_bytes_or_text(data, expected):
    assert parse_max_int(data) == expected


@pytest.mark.parametrize("data", [b"", b"maximum\n", b"Max\n", ""])
def test_parse_max_int_rejects_anything_else(data):
    with pytest.raises(ParseError):
        parse_max_int(data)


@pytest.mark.parametrize("data, expected", [
    (b"rss 1\ncache 2\nmapped_file 3\n", {"rss": 1, "cache": 2}),
    (b"cache 2\nrss 1", {"rss": 1, "cache": 2}),                        # last line without a newline
    (b"rss 1\n", {"rss": 1}),                                           # a key missing: absent
    (b"", {}),                                                          # an empty file
    (b"rss_huge 5\ntotal_rss 7\nrss 1\n", {"rss": 1}),                  # not found inside longer keys
    (b"rss_huge 5\ntotal_rss 7\n", {}),
    (b"rss x\ncache 2\n", {"cache": 2}),                                # not an integer: skipped
    (b"rss 9223372036854771712\n", {"rss": 9223372036854771712}),
])
def test_flat_keys_picks_only_the_keys_asked_for(data, expected):
    assert FlatKeys("rss", "cache").parse(data) == expected


def flat_keyed_fixtures() -> list:
    return sorted(p for name in FLAT_KEYED for p in TREES.rglob(name))


@pytest.mark.parametrize("path", flat_keyed_fixtures(), ids=lambda p: str(p.relative_to(TREES)))
def test_flat_keys_agrees_with_the_text_parser_on_real_kernel_files(path):
    data = path.read_bytes()
    every = parse_flat_keyed(data.decode())
    assert FlatKeys(*every).parse(data) == every
    assert FlatKeys("no_such_key").parse(data) == {}


def test_the_fixture_trees_hold_flat_keyed_files():
    assert len(flat_keyed_fixtures()) > 20


@pytest.mark.parametrize("data, expected", [
    (b"some avg10=0.00 avg60=0.00 avg300=0.10 total=12940433\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
     Pressure(12940433, 0)),
    (b"some avg10=0.00 avg60=0.00 avg300=0.10 total=7\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=3",
     Pressure(7, 3)),                                                   # no trailing newline
    (b"some avg10=1.00 avg60=0.00 avg300=0.00 total=5\n", Pressure(5, None)),  # no "full" line (< 5.13)
    (b"", Pressure(None, None)),
    (b"some avg10=1.00 avg60=0.00 avg300=0.00\n", Pressure(None, None)),      # no total
    (b"some total=4 avg10=1.00\n", Pressure(4, None)),                  # total not last
])
def test_parse_pressure_reads_the_totals_from_bytes(data, expected):
    assert parse_pressure(data) == expected


# cgroup.pressure is a switch ("1"), not a PSI file.
PSI_FILES = sorted(p for resource in ("cpu", "memory", "io") for p in TREES.rglob(f"{resource}.pressure"))


@pytest.mark.parametrize("path", PSI_FILES, ids=lambda p: str(p.relative_to(TREES)))
def test_parse_pressure_agrees_with_the_text_on_real_kernel_files(path):
    text = path.read_text()
    totals = {line.split()[0]: int(line.rsplit("total=", 1)[1]) for line in text.splitlines()}
    assert parse_pressure(path.read_bytes()) == Pressure(totals.get("some"), totals.get("full"))


@pytest.mark.parametrize("data, expected", [(b"user 150\nsystem 25\n", (1_500_000_000, 250_000_000)),
                                            (b"system 25", (None, 250_000_000)),
                                            (b"", (None, None))])
def test_parse_cpuacct_stat_from_bytes(data, expected):
    assert parse_cpuacct_stat(data, user_hz=100) == expected


def test_parse_io_stat_of_an_empty_file_is_no_device():
    assert parse_io_stat(b"") == []
    [dev] = parse_io_stat(b"8:0 rbytes=1 wbytes=2 rios=3 wios=4")   # no trailing newline
    assert (dev.device, dev.read_bytes, dev.write_bytes, dev.reads, dev.writes) == ("8:0", 1, 2, 3, 4)


def test_parse_blkio_throttle_of_a_cgroup_without_io_is_no_device():
    assert parse_blkio_throttle(b"Total 0\n", b"Total 0\n") == []
    assert parse_blkio_throttle(b"", None) == []
