"""PromQL text helpers for checking dashboards and alert rules against a live Prometheus (pure).

- ``expand_variables``: a dashboard query as Grafana would send it, with every template variable
  matching everything.
- ``comparisons_to_bool``: an alert expression whose comparisons return 0/1 instead of filtering,
  so "does it return data" asks whether every metric it names exists, not whether it fires now.
- ``vector_selectors``: the (metric, matchers) of every vector selector, to check filters.

All three walk the text once, skipping string literals (``"..."``, ``'...'``, backquoted) and
comments, and tell the label-matcher braces ``{...}`` apart from the operators outside them.
"""

from __future__ import annotations

import re

# Longest first, so ">=" is not read as ">" followed by "=".
COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")
# Grafana's built-in interval variables, and the values the live test gives them.
RATE_INTERVAL = "$__rate_interval"
INTERVAL = "$__interval"
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)(?::\w+)?\]\]|\$(\w+)")
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# Words of the language that are not metric names.
_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                       "unless", "offset", "atan2", "inf", "nan", "start", "end"})
_LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})


def expand_variables(expr: str, rate_interval: str = "10s", interval: str = "5s", value: str = ".*") -> str:
    """``$__rate_interval`` and ``$__interval`` become durations; every other variable, ``value``."""
    expr = expr.replace(RATE_INTERVAL, rate_interval).replace(INTERVAL, interval)
    return _VARIABLE.sub(value, expr)


def _scan(expr: str):
    """Yield (index, char, brace_depth, in_code) for each character; in_code is False in strings/comments."""
    depth = 0
    quote: str | None = None
    comment = False
    i = 0
    while i < len(expr):
        ch = expr[i]
        if comment:
            comment = ch != "\n"
            yield i, ch, depth, False
        elif quote is not None:
            yield i, ch, depth, False
            if ch == "\\" and quote != "`" and i + 1 < len(expr):
                i += 1
                yield i, expr[i], depth, False
            elif ch == quote:
                quote = None
        elif ch in "\"'`":
            quote = ch
            yield i, ch, depth, False
        elif ch == "#":
            comment = True
            yield i, ch, depth, False
        else:
            if ch == "{":
                depth += 1
            yield i, ch, depth, True
            if ch == "}":
                depth = max(depth - 1, 0)
        i += 1


def comparisons_to_bool(expr: str) -> str:
    """Turn every comparison outside label matchers and strings into its ``bool`` form.

    ``a{x!="y"} / b > 0.9`` -> ``a{x!="y"} / b > bool 0.9``. With ``bool`` a comparison keeps
    every series (value 0 or 1), so a threshold filters nothing; a metric that does not exist
    still yields nothing. Comparisons already marked ``bool`` are left alone.
    """
    code = {i for i, _, depth, in_code in _scan(expr) if in_code and depth == 0}
    out: list[str] = []
    i = 0
    while i < len(expr):
        op = next((c for c in COMPARISONS if i in code and expr.startswith(c, i)
                   and all(j in code for j in range(i, i + len(c)))), None)
        if op is None:
            out.append(expr[i])
            i += 1
            continue
        i += len(op)
        out.append(op)
        if re.match(r"\s*bool\b", expr[i:]) is None:
            out.append(" bool" if expr[i:i + 1].isspace() else " bool ")
    return "".join(out)


def _mask(expr: str) -> str:
    """``expr`` with strings, comments and label-matcher contents blanked (same length)."""
    return "".join(ch if in_code and (depth == 0 or ch == "{" or ch == "}") else " "
                   for _, ch, depth, in_code in _scan(expr))


def vector_selectors(expr: str) -> list[tuple[str, str]]:
    """(metric name, matcher text inside the braces or '') of every vector selector in ``expr``."""
    masked = _mask(expr)
    # Blank range and subquery durations ("[5m]", "[$__rate_interval]") and label lists ("by (a, b)").
    masked = re.sub(r"\[[^\]]*\]", lambda m: " " * len(m.group()), masked)
    masked = re.sub(r"\b(?:%s)\s*\([^)]*\)" % "|".join(_LABEL_LIST_KEYWORDS),
                    lambda m: " " * len(m.group()), masked)
    found = []
    for m in _IDENT.finditer(masked):
        name, end = m.group(), m.end()
        if name in _KEYWORDS or (m.start() > 0 and (masked[m.start() - 1].isdigit() or masked[m.start() - 1] == ".")):
            continue  # a keyword, or the exponent/unit part of a number ("1e3", "5m")
        rest = masked[end:].lstrip()
        if rest.startswith("("):
            continue  # a function call
        if rest.startswith("{"):
            brace = end + (len(masked[end:]) - len(rest))
            close = masked.index("}", brace)
            found.append((name, expr[brace + 1:close].strip()))
        else:
            found.append((name, ""))
    # Selectors without a metric name: {__name__=~"..."}.
    for start, ch in enumerate(masked):
        if ch != "{":
            continue
        word = re.search(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*$", masked[:start])
        if word is None or word.group(1) in _KEYWORDS:
            found.append(("", expr[start + 1:masked.index("}", start)].strip()))
    return found
