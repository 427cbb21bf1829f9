"""Parsing limit requests: every form Docker's CLI accepts, and every bad input refused with its rule."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cgwatch.errors import InvalidLimit, InvalidRequest
from cgwatch.limits.request import (FIELDS, Mode, format_cpuset, parse_cpuset, parse_limit_request,
                                    parse_memory)
from cgwatch.server.errors import status_of

MIB = 1 << 20
GIB = 1 << 30


def patch(body: str):
    return parse_limit_request(body.encode(), Mode.PATCH)


@pytest.mark.parametrize("body, field, expected", [
    ('{"cpus": 0.5}', "cpus", Decimal("0.5")),
    ('{"cpus": "0.5"}', "cpus", Decimal("0.5")),
    ('{"cpus": 2}', "cpus", Decimal(2)),
    ('{"cpus": 0.01}', "cpus", Decimal("0.01")),
    ('{"cpus": "1.000000001"}', "cpus", Decimal("1.000000001")),
    # strconv/big.Rat syntax, as docker --cpus: the host bound (validate.py) refuses 1000 CPUs later.
    ('{"cpus": "1e3"}', "cpus", Decimal(1000)),
    ('{"cpus": null}', "cpus", None),
    ('{"cpu_period_us": 1000}', "cpu_period_us", 1000),
    ('{"cpu_period_us": 1000000}', "cpu_period_us", 1000000),
    ('{"cpu_period_us": null}', "cpu_period_us", None),
    ('{"cpu_quota_us": 1000}', "cpu_quota_us", 1000),
    ('{"cpu_quota_us": -1}', "cpu_quota_us", None),
    ('{"cpu_quota_us": null}', "cpu_quota_us", None),
    ('{"cpu_shares": 2}', "cpu_shares", 2),
    ('{"cpu_shares": 262144}', "cpu_shares", 262144),
    ('{"cpu_shares": null}', "cpu_shares", None),
    ('{"cpuset_cpus": "0-1,3"}', "cpuset_cpus", "0-1,3"),
    ('{"cpuset_cpus": "3,1,2"}', "cpuset_cpus", "1-3"),
    ('{"cpuset_cpus": "0,0-1"}', "cpuset_cpus", "0-1"),
    ('{"cpuset_cpus": null}', "cpuset_cpus", None),
    ('{"memory": "100m"}', "memory", 100 * MIB),
    ('{"memory": "1g"}', "memory", GIB),
    ('{"memory": "12288k"}', "memory", 12 * MIB),
    ('{"memory_swap": "512k"}', "memory_swap", 512 << 10),  # "512k" is below memory's 6 MiB minimum
    ('{"memory": 104857600}', "memory", 104857600),
    ('{"memory": "100MiB"}', "memory", 100 * MIB),
    ('{"memory": "100 MB"}', "memory", 100 * MIB),
    ('{"memory": "100M"}', "memory", 100 * MIB),
    ('{"memory": "1.5g"}', "memory", 1536 * MIB),
    ('{"memory": "6291456"}', "memory", 6291456),
    ('{"memory": 6291456}', "memory", 6291456),
    ('{"memory": 9223372036854710271}', "memory", 2 ** 63 - 2 ** 16 - 1),
    ('{"memory": null}', "memory", None),
    ('{"memory_reservation": "64m"}', "memory_reservation", 64 * MIB),
    ('{"memory_reservation": null}', "memory_reservation", None),
    ('{"memory_swap": "200m"}', "memory_swap", 200 * MIB),
    ('{"memory_swap": -1}', "memory_swap", None),
    ('{"memory_swap": "-1"}', "memory_swap", None),
    ('{"memory_swap": null}', "memory_swap", None),
    ('{"pids_limit": 1}', "pids_limit", 1),
    ('{"pids_limit": 4194304}', "pids_limit", 4194304),
    ('{"pids_limit": -1}', "pids_limit", None),
    ('{"pids_limit": null}', "pids_limit", None),
])
def test_accepted_values_are_normalized(body, field, expected):
    request = patch(body)
    assert dict(request.fields) == {field: expected}
    assert type(request.fields[field]) is type(expected)


@pytest.mark.parametrize("body, field, rule", [
    ('{"cpus": -1}', "cpus", "min"),
    ('{"cpus": "-1"}', "cpus", "min"),
    ('{"cpus": 0}', "cpus", "min"),
    ('{"cpus": "0.0001"}', "cpus", "min"),
    ('{"cpus": 0.009}', "cpus", "min"),
    ('{"cpus": "1e-999999999"}', "cpus", "min"),
    ('{"cpus": "1e999999999"}', "cpus", "max"),
    ('{"cpus": true}', "cpus", "type"),
    ('{"cpus": []}', "cpus", "type"),
    ('{"cpus": {}}', "cpus", "type"),
    ('{"cpus": "abc"}', "cpus", "format"),
    ('{"cpus": ""}', "cpus", "format"),
    ('{"cpus": "0,5"}', "cpus", "format"),
    ('{"cpus": "NaN"}', "cpus", "format"),
    ('{"cpus": "0.5\\n"}', "cpus", "format"),
    ('{"cpus": "1.0000000001"}', "cpus", "precision"),
    ('{"cpus": 0.5, "cpu_quota_us": 50000}', "cpus", "combination"),
    ('{"cpus": 0.5, "cpu_period_us": 100000}', "cpus", "combination"),
    ('{"memory": "100x"}', "memory", "format"),
    ('{"memory": "1e3"}', "memory", "format"),
    ('{"memory": ""}', "memory", "format"),
    ('{"memory": "-1"}', "memory", "format"),
    ('{"memory": "100m\\n"}', "memory", "format"),
    ('{"memory": "\u0661\u0660\u0660m"}', "memory", "format"),  # Arabic-Indic digits are not digits here
    ('{"memory": -1}', "memory", "min"),
    ('{"memory": 4194304}', "memory", "min"),
    ('{"memory": "4m"}', "memory", "min"),
    (f'{{"memory": {2 ** 63}}}', "memory", "max"),
    (f'{{"memory": {2 ** 64}}}', "memory", "max"),
    (f'{{"memory": {2 ** 63 - 2 ** 16}}}', "memory", "max"),
    ('{"memory": "8388608p"}', "memory", "max"),
    ('{"memory": 100.5}', "memory", "type"),
    ('{"memory": 104857600.0}', "memory", "type"),
    ('{"memory": true}', "memory", "type"),
    ('{"memory": ["100m"]}', "memory", "type"),
    ('{"memory_reservation": "1m"}', "memory_reservation", "min"),  # Docker: "Minimum memory reservation allowed is 6MB"
    ('{"memory_swap": "abc"}', "memory_swap", "format"),
    ('{"memory_swap": -2}', "memory_swap", "min"),
    ('{"cpu_period_us": 999}', "cpu_period_us", "min"),
    ('{"cpu_period_us": 1000001}', "cpu_period_us", "max"),
    ('{"cpu_period_us": 100000.0}', "cpu_period_us", "type"),
    ('{"cpu_period_us": "100000"}', "cpu_period_us", "type"),
    ('{"cpu_quota_us": 999}', "cpu_quota_us", "min"),
    ('{"cpu_quota_us": 0}', "cpu_quota_us", "min"),
    ('{"cpu_quota_us": -2}', "cpu_quota_us", "min"),
    (f'{{"cpu_quota_us": {2 ** 44}}}', "cpu_quota_us", "max"),
    ('{"cpu_quota_us": "50000 100000\\nmax"}', "cpu_quota_us", "type"),
    ('{"cpu_shares": 1}', "cpu_shares", "min"),
    ('{"cpu_shares": 262145}', "cpu_shares", "max"),
    ('{"cpu_shares": true}', "cpu_shares", "type"),
    ('{"cpuset_cpus": "0-9223372036854775807"}', "cpuset_cpus", "max"),
    ('{"cpuset_cpus": "0-4096"}', "cpuset_cpus", "max"),
    ('{"cpuset_cpus": "3-1"}', "cpuset_cpus", "format"),
    ('{"cpuset_cpus": "0,,1"}', "cpuset_cpus", "format"),
    ('{"cpuset_cpus": "0,"}', "cpuset_cpus", "format"),
    ('{"cpuset_cpus": " 0"}', "cpuset_cpus", "format"),
    ('{"cpuset_cpus": "0\\n1"}', "cpuset_cpus", "format"),
    ('{"cpuset_cpus": "0\\n"}', "cpuset_cpus", "format"),
    ('{"cpuset_cpus": ""}', "cpuset_cpus", "format"),
    ('{"cpuset_cpus": "-1"}', "cpuset_cpus", "format"),
    ('{"cpuset_cpus": "+1"}', "cpuset_cpus", "format"),
    ('{"cpuset_cpus": "0-3:2/4"}', "cpuset_cpus", "format"),
    ('{"cpuset_cpus": 1}', "cpuset_cpus", "type"),
    ('{"pids_limit": 0}', "pids_limit", "min"),
    ('{"pids_limit": -5}', "pids_limit", "min"),
    (f'{{"pids_limit": {2 ** 32}}}', "pids_limit", "max"),
    ('{"pids_limit": "10"}', "pids_limit", "type"),
    ('{"bogus": 1}', "bogus", "unknown_field"),
    ('{"cpus": 1, "Memory": "1g"}', "Memory", "unknown_field"),
    ('{"cpus": 1, "force": "yes"}', "force", "type"),
    ('{"cpus": 1, "force": null}', "force", "type"),
    ('{"cpus": 1, "keep_for_name": 1}', "keep_for_name", "type"),
])
def test_bad_values_are_422_naming_field_and_rule(body, field, rule):
    with pytest.raises(InvalidLimit) as exc:
        patch(body)
    assert (exc.value.field, exc.value.rule) == (field, rule)
    assert status_of(exc.value) == 422
    assert field in exc.value.message  # the sentence names what to fix


@pytest.mark.parametrize("body", [
    b'{"cpus": 0.5, "cpus": 1}',
    b'{"cpus": {"a": 1, "a": 2}}',
    b'[{"cpus": 1}]',
    b'"cpus"',
    b"1",
    b"null",
    b'{"cpus": "\xff"}',
    b"\xef\xbb\xbf{}",
    b"{not json",
    b'{"cpus": 0.5',
    b"[" * 100000,
    b'{"cpus": ' + b"[" * 100000,
    b'{"cpus": NaN}',
    b'{"cpus": Infinity}',
    b'{"cpus": -Infinity}',
    b'{"memory": ' + b"1" * 5000 + b"}",
    b'{"cpus": 1e999999999999999999999}',
    b"",
    b" \n",
], ids=lambda b: repr(b[:30]))
def test_malformed_bodies_are_400(body):
    with pytest.raises(InvalidRequest) as exc:
        parse_limit_request(body, Mode.PUT)
    assert status_of(exc.value) == 400


def test_unknown_fields_are_all_named():
    with pytest.raises(InvalidLimit) as exc:
        patch('{"cpus": 1, "zz": 1, "aa": 2}')
    assert "'aa'" in exc.value.message and "'zz'" in exc.value.message


def test_put_without_limits_points_to_delete():
    with pytest.raises(InvalidLimit) as exc:
        parse_limit_request(b"{}", Mode.PUT)
    assert exc.value.rule == "empty" and "DELETE" in exc.value.message


def test_patch_with_only_flags_has_nothing_to_do():
    with pytest.raises(InvalidLimit) as exc:
        patch('{"force": true}')
    assert exc.value.rule == "empty"


@pytest.mark.parametrize("body", [b"", b"  ", b"{}", b'{"force": true}'])
def test_delete_takes_an_empty_body_or_flags(body):
    request = parse_limit_request(body, Mode.DELETE)
    assert request.mode is Mode.DELETE and dict(request.fields) == {}


def test_delete_refuses_limit_fields():
    with pytest.raises(InvalidLimit) as exc:
        parse_limit_request(b'{"cpus": 1}', Mode.DELETE)
    assert (exc.value.field, exc.value.rule) == ("cpus", "combination")


def test_flags_default_to_false_and_are_read():
    assert not patch('{"cpus": 1}').force
    request = patch('{"cpus": 1, "force": true, "keep_for_name": true}')
    assert request.force and request.keep_for_name and dict(request.fields) == {"cpus": Decimal(1)}


def test_only_the_fields_sent_are_present_in_field_order():
    request = patch('{"pids_limit": 5, "memory": "1g", "cpus": 1}')
    assert list(request.fields) == ["cpus", "memory", "pids_limit"]
    assert set(request.fields) <= set(FIELDS)


def test_fields_are_read_only():
    with pytest.raises(TypeError):
        patch('{"cpus": 1}').fields["cpus"] = 2  # type: ignore[index]


@pytest.mark.parametrize("cpus, text", [
    (frozenset(), ""),
    (frozenset({0}), "0"),
    (frozenset({0, 1}), "0-1"),
    (frozenset({0, 1, 2, 3, 5}), "0-3,5"),
    (frozenset({5, 3, 1}), "1,3,5"),
    (frozenset({0, 2, 3, 4, 7, 8}), "0,2-4,7-8"),
])
def test_cpusets_are_written_as_the_kernel_writes_them(cpus, text):
    assert format_cpuset(cpus) == text
    if text:
        assert parse_cpuset(text) == cpus


@pytest.mark.parametrize("text, canonical", [("0.50", "0.5"), ("5e-1", "0.5"), ("1e3", "1000"), ("2.000", "2")])
def test_cpus_have_one_spelling_per_value(text, canonical):
    assert str(patch(f'{{"cpus": "{text}"}}').fields["cpus"]) == canonical


def test_memory_fractions_of_a_byte_are_dropped_like_docker():
    assert parse_memory("1.5k", "memory") == 1536
    assert parse_memory("0.0001k", "memory") == 0
