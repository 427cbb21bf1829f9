"""The cgroup files one cgwatch collection opens, traced from the code rather than listed by hand.

    .venv/bin/python bench/trace_opens.py OUT.json [--ignore GLOB ...]

Runs one ``Exporter.collect_blocking`` in this process (cgwatch.agent.Agent, Docker off, every
collector on) with an audit hook on the ``open`` event (raised by open() and os.open(), PEP 578)
and writes every path under a cgroup hierarchy it opened, in order, duplicates included.
scrape_bench.py runs it as a child process so the hook never slows the floor it measures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def trace(ignore: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(every cgroup file opened by one collection, the hierarchy roots)."""
    from cgwatch.agent import Agent
    from cgwatch.config import Settings

    with tempfile.TemporaryDirectory(prefix="cgwatch-trace-") as tmp:
        agent = Agent(Settings(docker_host="", podman_host="", containerd_host="", ignore_cgroups=ignore, max_age_s=0, state_dir=Path(tmp)))
        # Every file a collection reads, kept-open or not: with kept descriptors the second
        # collection opens only what is not kept (1005 files at 1000 containers instead of 24,095),
        # and the floor would price a fraction of the reads.
        agent.host.reader.keep_files(None)
        roots = [str(r) for r in agent.host.layout.hierarchy_roots()]
        prefixes = tuple(r + "/" for r in roots)
        opened: list[str] = []
        recording = False

        def hook(event: str, args: tuple) -> None:  # type: ignore[type-arg]
            if recording and event == "open" and isinstance(args[0], str) and args[0].startswith(prefixes):
                opened.append(args[0])

        sys.addaudithook(hook)
        agent.exporter.collect_blocking()  # warm-up: imports and first-use opens are not the scrape's
        recording = True
        agent.exporter.collect_blocking()
        recording = False
    return opened, roots


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--ignore", action="append", default=[], metavar="GLOB")
    args = p.parse_args(argv)
    opened, roots = trace(tuple(args.ignore))
    args.out.write_text(json.dumps({"opened": opened, "roots": roots}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
