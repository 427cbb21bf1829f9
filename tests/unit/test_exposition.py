"""Our exposition writer against the reference parser (client_python) and the format's rules."""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families

from cgwatch.exposition import Family, format_value, render, render_labels


def test_output_parses_back_to_the_same_samples():
    labels = render_labels([("id", '/we"ird\\path\nx'), ("name", "n")])
    counter = Family("container_cpu_usage_seconds_total", "Cumulative cpu time.", "counter")
    counter.add(f'cpu="total",{labels}', 1.25)
    gauge = Family("machine_cpu_cores", "Cores.", "gauge")
    gauge.add("", 2)
    text = render([counter, gauge]).decode()
    parsed = {f.name: f for f in text_string_to_metric_families(text)}
    [s] = parsed["container_cpu_usage_seconds"].samples
    assert s.name == "container_cpu_usage_seconds_total"
    assert s.labels == {"cpu": "total", "id": '/we"ird\\path\nx', "name": "n"} and s.value == 1.25
    assert parsed["container_cpu_usage_seconds"].type == "counter"
    assert parsed["machine_cpu_cores"].samples[0].value == 2


def test_empty_family_is_not_written():
    assert render([Family("x", "h", "gauge")]) == b""


def test_values_are_formatted_as_prometheus_reads_them():
    assert format_value(104857600) == "104857600"
    assert format_value(0.5) == "0.5"
    assert format_value(3.0) == "3"
    assert format_value(1e-9) == "1e-09"
    assert format_value(math.inf) == "+Inf"
    assert format_value(math.nan) == "NaN"
    assert float(format_value(2.0 ** 63)) == 2.0 ** 63
