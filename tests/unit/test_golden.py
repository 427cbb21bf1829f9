"""The whole exposition over fixture trees captured from real kernels, diffed against a golden file.

Regenerate after an intended change with `pytest tests/unit/test_golden.py --update-golden`, and
read the diff before committing it. Volatile families (the agent's own timings and process
metrics, last-seen and start times that depend on when the fixture was checked out) are left out.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cgwatch.cgroup import make_reader
from cgwatch.collectors import enabled_collectors
from cgwatch.host.fdlimit import FdBudget
from cgwatch.host.keptfiles import KeptFiles
from cgwatch.exporter import Exporter
from cgwatch.hostfs import Host
from tests.conftest import FIXTURES, REPO

GOLDEN = REPO / "tests" / "golden"
VOLATILE_PREFIXES = ("cgwatch_", "process_", "python_", "container_last_seen", "container_start_time_seconds")
TREES = ["v1", "v2"]


def exposition(tree: Path, kept: KeptFiles | None = None) -> str:
    host = Host(tree / "cgroup", tree / "proc")
    reader = host.reader if kept is None else make_reader(host.layout, kept)
    exporter = Exporter(reader, host.proc, host.scan, enabled_collectors(), max_age_s=0)
    text = exporter.collect_blocking().decode()
    keep = []
    skipping = False
    for line in text.splitlines():
        name = line.split(" ", 3)[2] if line.startswith("# ") else line.split("{", 1)[0].split(" ", 1)[0]
        skipping = name.startswith(VOLATILE_PREFIXES)
        if not skipping:
            keep.append(line)
    return "\n".join(keep) + "\n"


@pytest.mark.parametrize("kernel", TREES)
def test_exposition_matches_the_golden_file(kernel, request):
    tree = FIXTURES / "cgroupfs" / kernel
    if not tree.exists():
        pytest.fail(f"fixture tree {tree} is missing (tests/fixtures/capture-{kernel}.sh captures it)")
    text = exposition(tree)
    golden = GOLDEN / f"{kernel}.prom"
    if request.config.getoption("--update-golden"):
        golden.write_text(text)
    assert golden.exists(), f"no golden file yet: run pytest {__file__} --update-golden"
    assert text == golden.read_text(), f"exposition changed; if intended: pytest {__file__} --update-golden"


@pytest.mark.parametrize("kernel", TREES)
def test_reads_through_kept_descriptors_give_the_same_exposition(kernel):
    tree = FIXTURES / "cgroupfs" / kernel
    kept = KeptFiles(FdBudget(10_000))
    try:
        assert exposition(tree, kept) == (GOLDEN / f"{kernel}.prom").read_text()
        assert len(kept) > 0
        assert exposition(tree, kept) == (GOLDEN / f"{kernel}.prom").read_text()  # re-read with pread
    finally:
        kept.close()


@pytest.mark.parametrize("kernel", TREES)
def test_golden_exposition_passes_promtool(kernel):
    promtool = shutil.which("promtool")
    if promtool is None:
        from tests.conftest import need
        need("needs promtool (Debian package prometheus)")
    text = (GOLDEN / f"{kernel}.prom").read_text()
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


@pytest.mark.parametrize("kernel", TREES)
def test_fixture_containers_are_recognised(kernel):
    """The captured shapes come out as their runtimes, with the limits set at capture time."""
    text = (GOLDEN / f"{kernel}.prom").read_text()
    runtimes = {s.labels["runtime"] for f in text_string_to_metric_families(text) if f.name == "container_info"
                for s in f.samples}
    assert {"docker", "podman", "systemd", "raw"} <= runtimes
    assert runtimes & {"cri", "containerd"}
    quotas = [s.value for f in text_string_to_metric_families(text) if f.name == "container_spec_cpu_quota"
              for s in f.samples]
    assert 50000 in quotas
    ooms = [s.value for f in text_string_to_metric_families(text) if f.name == "container_oom_kills"
            for s in f.samples]
    assert 1 in ooms
