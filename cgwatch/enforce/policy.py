"""Policies: rules that match containers and declare limits in the API's vocabulary.

    rules:
      - name: web
        match: {name: "web-*", image: "nginx:*", labels: {tier: web}, runtime: docker, cgroup: "/docker/*"}
        limits: {cpus: 0.5, memory: 256m}

The first rule whose every given matcher matches governs a container. A rule enforces only
the limits it names (PATCH semantics): the others stay as they are. Errors name the line.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config.yamlnodes import NodeReader, line_of
from ..discovery.inventory import Container
from ..errors import CgwatchError
from ..limits.request import LimitRequest, Mode, parse_limit_request

RULE_KEYS = {"name", "match", "limits"}
MATCH_KEYS = {"name", "image", "labels", "runtime", "cgroup"}


class PolicyError(ValueError):
    def __init__(self, source: str, line: int, message: str):
        super().__init__(f"{source}:{line}: {message}")
        self.source, self.line, self.message = source, line, message


@dataclass(frozen=True, slots=True)
class Match:
    name: str | None = None
    image: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    runtime: str | None = None
    cgroup: str | None = None

    def matches(self, c: Container) -> bool:
        def glob(value: str, pattern: str | None) -> bool:
            return pattern is None or fnmatch.fnmatchcase(value, pattern)

        return (glob(c.display_name, self.name) and glob(c.image, self.image) and glob(c.path, self.cgroup)
                and (self.runtime is None or c.runtime == self.runtime)
                and all(k in c.labels and fnmatch.fnmatchcase(c.labels[k], v) for k, v in self.labels.items()))


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    line: int
    match: Match
    request: LimitRequest
    limits: Mapping[str, Any]  # as written in the file, for display


@dataclass(frozen=True, slots=True)
class Policy:
    rules: tuple[Rule, ...] = ()
    source: str = ""

    def rule_for(self, c: Container) -> Rule | None:
        return next((r for r in self.rules if r.match.matches(c)), None)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "rules": [
            {"name": r.name, "line": r.line, "match": {k: v for k, v in vars_of(r.match).items() if v},
             "limits": dict(r.limits)} for r in self.rules]}


def vars_of(m: Match) -> dict[str, Any]:
    return {"name": m.name, "image": m.image, "labels": dict(m.labels), "runtime": m.runtime, "cgroup": m.cgroup}


def load_policy_file(path: Path) -> Policy:
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyError(str(path), 0, f"cannot read: {exc.strerror}") from exc
    return load_policy(text, str(path))


def load_policy(text: str, source: str = "<policy>") -> Policy:
    nodes = NodeReader(lambda line, message: PolicyError(source, line, message))
    root = nodes.document(text)
    if root is None:
        return Policy((), source)
    doc = nodes.mapping(root, {"rules"}, "the policy")
    rules_node = doc.get("rules")
    if rules_node is None:
        return Policy((), source)
    if not isinstance(rules_node, yaml.SequenceNode):
        raise PolicyError(source, line_of(rules_node), "'rules' must be a list of rules")
    rules = [_rule(nodes, node, source, i) for i, node in enumerate(rules_node.value)]
    seen: set[str] = set()
    for r in rules:
        if r.name in seen:
            raise PolicyError(source, r.line, f"rule name {r.name!r} is used twice")
        seen.add(r.name)
    return Policy(tuple(rules), source)


def _rule(nodes: NodeReader, node: yaml.Node, source: str, index: int) -> Rule:
    m = nodes.mapping(node, RULE_KEYS, "a rule")
    name = nodes.typed(m["name"], str, "a str") if "name" in m else f"rule-{index + 1}"
    if "limits" not in m:
        raise PolicyError(source, line_of(node), f"rule {name!r} has no 'limits'")
    match = _match(nodes, m["match"]) if "match" in m else Match()
    limits_node = nodes.mapping(m["limits"], None, "'limits'")
    limits = {k: nodes.plain(v) for k, v in limits_node.items()}
    try:
        request = parse_limit_request(json.dumps(limits).encode(), Mode.PATCH)
    except CgwatchError as exc:
        bad = exc.details.get("field")
        line = line_of(limits_node[bad]) if isinstance(bad, str) and bad in limits_node else line_of(m["limits"])
        raise PolicyError(source, line, f"rule {name!r}: {exc.message}") from exc
    return Rule(name=name, line=line_of(node), match=match, request=request, limits=limits)


def _match(nodes: NodeReader, node: yaml.Node) -> Match:
    m = nodes.mapping(node, MATCH_KEYS, "'match'")
    values: dict[str, Any] = {}
    for key, value in m.items():
        if key == "labels":
            values[key] = {k: nodes.typed(v, str, "a str") for k, v in nodes.mapping(value, None, "'labels'").items()}
        else:
            values[key] = nodes.typed(value, str, "a str")
    return Match(**values)
