"""Policy files: what a rule matches, which rule wins, and errors that name the line."""

from __future__ import annotations

import pytest

from cgwatch.discovery.inventory import Container
from cgwatch.enforce.policy import PolicyError, load_policy

POLICY = """\
rules:
  - name: web
    match: {name: "web-*", image: "nginx:*", labels: {tier: front*}}
    limits: {cpus: 0.5, memory: 256m}
  - name: batch
    match: {runtime: docker, cgroup: "/docker/*"}
    limits:
      pids_limit: 100
  - name: everything
    limits: {cpu_shares: 512}
"""


def container(**kw) -> Container:
    base = dict(path="/docker/" + "a" * 64, runtime="docker", id="a" * 64, name="web-1", image="nginx:1.25",
                labels={"tier": "frontend"})
    return Container(**{**base, **kw})


def test_first_matching_rule_wins():
    policy = load_policy(POLICY)
    assert policy.rule_for(container()).name == "web"
    assert policy.rule_for(container(name="db-1")).name == "batch"
    cron = container(runtime="systemd", path="/system.slice/cron.service", name="", id="cron.service", image="",
                     labels={})
    assert policy.rule_for(cron).name == "everything"


def test_every_matcher_given_must_match():
    policy = load_policy(POLICY)
    assert policy.rule_for(container(labels={"tier": "back"})).name == "batch"
    assert policy.rule_for(container(image="httpd:2")).name == "batch"


def test_limits_use_the_api_vocabulary():
    rule = load_policy(POLICY).rules[0]
    assert rule.request.fields["memory"] == 256 << 20
    assert float(rule.request.fields["cpus"]) == 0.5
    assert rule.line == 2


def test_empty_file_is_an_empty_policy():
    assert load_policy("").rules == ()
    assert load_policy("rules: []\n").rules == ()


@pytest.mark.parametrize("text, line, words", [
    ("rules: {a: 1}\n", 1, "list"),
    ("rules:\n  - name: a\n", 2, "no 'limits'"),
    ("rules:\n  - name: a\n    limits: {cpus: 0.5, cpus: 1}\n", 3, "twice"),
    ("rules:\n  - limits: {cpus: -1}\n", 2, "cpus"),
    ("rules:\n  - limits: {bogus: 1}\n", 2, "bogus"),
    ("rulez: []\n", 1, "unknown key 'rulez'"),
    ("rules:\n  - match: {labels: [a]}\n    limits: {cpus: 1}\n", 2, "mapping"),
])
def test_errors_name_the_line(text, line, words):
    with pytest.raises(PolicyError) as info:
        load_policy(text, "p.yaml")
    assert info.value.line == line
    assert words in str(info.value)
    assert str(info.value).startswith(f"p.yaml:{line}:")
