"""Copy containerd's vendored .proto files into a protoc tree that Python can import.

Two changes, nothing else (every removed line is left blank, so line numbers stay upstream's):
  - gogoproto and containerd's fieldpath plugin are Go code generators' options: their `import weak`
    lines, `option (...)` statements and `[(gogoproto.*) = ...]` field options go. They change no
    wire format (https://github.com/gogo/protobuf/blob/master/extensions.md).
  - `github.com/containerd/containerd/api/...` imports become `cgwatch/runtimes/containerd/api/...`,
    so the generated modules import each other inside this package. Package names (and so the gRPC
    method paths and message names on the wire) are untouched.

Usage: strip_gogo.py SRC_ROOT DST_ROOT FILE...   (FILE relative to SRC_ROOT's api/ directory)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

UPSTREAM = "github.com/containerd/containerd/api/"
OURS = "cgwatch/runtimes/containerd/api/"

_WEAK_IMPORT = re.compile(r'^\s*import weak "[^"]+";\s*$')
_GO_OPTION = re.compile(r"^\s*option \((gogoproto|containerd\.plugin)\.\w+\) = [^;]+;\s*$")
_BRACKET = re.compile(r"\s*\[([^\]]*)\]")


def _field_options(line: str) -> str:
    def drop(m: re.Match[str]) -> str:
        items = [i.strip() for i in m.group(1).split(",")]
        if all(i.startswith("(gogoproto.") for i in items):
            return ""
        if any(i.startswith("(gogoproto.") for i in items):
            # A bracket mixing gogoproto with real options: not in 1.6's files; stop rather than guess.
            raise SystemExit(f"mixed field options, strip by hand: {line.strip()}")
        return m.group(0)
    return _BRACKET.sub(drop, line)


def strip(text: str) -> str:
    out = []
    for line in text.splitlines():
        if _WEAK_IMPORT.match(line) or _GO_OPTION.match(line):
            out.append("")
            continue
        out.append(_field_options(line).replace(f'"{UPSTREAM}', f'"{OURS}'))
    return "\n".join(out) + "\n"


def main(src_root: str, dst_root: str, files: list[str]) -> None:
    for rel in files:
        src = Path(src_root) / UPSTREAM / rel
        dst = Path(dst_root) / OURS / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        text = strip(src.read_text())
        if "gogoproto" in text or "containerd.plugin" in text:
            raise SystemExit(f"{rel}: a gogoproto or fieldpath option is left")
        dst.write_text(text)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
