"""Reading YAML as nodes, not plain values, so every error in a config file can name its line.

Shared by the policy file (enforce/policy.py) and the web config file (server/webconfig.py): a
document is parsed once into nodes; mappings are checked for unknown and repeated keys (a repeated
key is an error, not "the last one wins"); scalars are constructed one at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

# Makes the caller's own error from a 1-based line (0: the whole file) and a message.
ErrorFactory = Callable[[int, str], Exception]


def line_of(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


class NodeReader:
    def __init__(self, error: ErrorFactory):
        self._error = error

    def error(self, node: yaml.Node | None, message: str) -> Exception:
        return self._error(line_of(node) if node is not None else 0, message)

    def document(self, text: str) -> yaml.Node | None:
        """The root node; None for an empty document."""
        loader = yaml.SafeLoader(text)
        try:
            return loader.get_single_node()
        except yaml.YAMLError as exc:
            # The context mark is where the broken construct began (an unclosed "{"), the line
            # to fix; the problem mark is where the parser gave up (often the end of the file).
            mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
            what = " ".join(filter(None, [getattr(exc, "context", None), getattr(exc, "problem", None)]))
            raise self._error(mark.line + 1 if mark else 0, f"not valid YAML: {what or exc}") from None
        finally:
            loader.dispose()

    def mapping(self, node: yaml.Node, allowed: set[str] | None, what: str) -> dict[str, yaml.Node]:
        """Key -> value node; ``allowed`` None accepts any string key."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{what} must be a mapping")
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str) or not key:
                raise self.error(key_node, f"keys in {what} must be strings")
            if key in out:
                raise self.error(key_node, f"{key!r} appears twice in {what}")
            if allowed is not None and key not in allowed:
                raise self.error(key_node, f"unknown key {key!r} in {what} (expected: {', '.join(sorted(allowed))})")
            out[key] = value_node
        return out

    def plain(self, node: yaml.Node) -> Any:
        """A scalar node's value, as yaml.safe_load would make it."""
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, "expected a single value")
        loader = yaml.SafeLoader("")
        try:
            return loader.construct_object(node)
        finally:
            loader.dispose()

    def typed(self, node: yaml.Node, kind: type, what: str) -> Any:
        value = self.plain(node)
        # bool is an int in Python; "true" is never an acceptable number here.
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise self.error(node, f"expected {what}, got {value!r}")
        return value
