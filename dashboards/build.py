"""Write the dashboards' JSON into dashboards/json/ (committed; Grafana provisions it from there).

    python -m dashboards.build           # regenerate dashboards/json/*.json
    python -m dashboards.build --check   # exit 1 if the committed JSON is stale (CI)
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from grafanalib._gen import write_dashboard
from grafanalib.core import Dashboard

from . import agent, container, host

JSON_DIR = Path(__file__).resolve().parent / "json"
COMMAND = "python -m dashboards.build"


def dashboards() -> list[Dashboard]:
    return [host.build(), container.build(), agent.build()]


def render(dashboard: Dashboard) -> str:
    """The JSON text as committed: sorted keys, two-space indent, trailing newline."""
    out = io.StringIO()
    write_dashboard(dashboard, out)
    return out.getvalue()


def generated() -> dict[str, str]:
    """File name -> JSON text, for every dashboard."""
    return {f"{d.uid}.json": render(d) for d in dashboards()}


def stale(json_dir: Path = JSON_DIR) -> list[str]:
    """Files that differ from what the generator produces now, are missing, or are left over."""
    want = generated()
    have = {p.name for p in json_dir.glob("*.json")} if json_dir.is_dir() else set()
    wrong = [name for name, text in want.items()
             if not (json_dir / name).is_file() or (json_dir / name).read_text() != text]
    return sorted(wrong + [name for name in have - set(want)])


def write(json_dir: Path = JSON_DIR) -> list[Path]:
    json_dir.mkdir(parents=True, exist_ok=True)
    want = generated()
    for leftover in set(p.name for p in json_dir.glob("*.json")) - set(want):
        (json_dir / leftover).unlink()
    paths = []
    for name, text in want.items():
        path = json_dir / name
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the committed JSON is current")
    parser.add_argument("--out", type=Path, default=JSON_DIR, help=f"output directory (default {JSON_DIR})")
    args = parser.parse_args(argv)
    if args.check:
        wrong = stale(args.out)
        if wrong:
            print(f"stale dashboard JSON: {', '.join(wrong)}; run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    for path in write(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
