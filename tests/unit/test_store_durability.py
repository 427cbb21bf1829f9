"""The desired-state file survives kill -9 at any moment: old or new document, never torn."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cgwatch.enforce.store import DesiredStore, StateCorrupt

WRITER = """
import sys
from pathlib import Path
from cgwatch.enforce.store import DesiredStore
store = DesiredStore(Path(sys.argv[1]))
i = 0
print("ready", flush=True)
while True:
    i += 1
    # A large record so a torn write would be visible.
    store.put("c", {"generation": i, "limits": {"memory_limit_bytes": i}, "pad": "x" * 20000})
"""


def test_round_trip(tmp_path):
    store = DesiredStore(tmp_path / "desired.json")
    store.put("abc", {"limits": {"pids_max": 5}})
    assert DesiredStore(tmp_path / "desired.json").get("abc") == {"limits": {"pids_max": 5}}
    assert store.remove("abc") and DesiredStore(tmp_path / "desired.json").all() == {}
    assert (tmp_path / "desired.json").stat().st_mode & 0o777 == 0o600


def test_a_corrupt_file_is_reported_not_silently_replaced(tmp_path):
    (tmp_path / "desired.json").write_text("{torn")
    with pytest.raises(StateCorrupt):
        DesiredStore(tmp_path / "desired.json")


def test_kill_9_during_writes_never_leaves_a_torn_file(tmp_path):
    path = tmp_path / "desired.json"
    rng = random.Random(1234)
    last = 0
    for _ in range(60):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
        assert proc.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not path.exists():  # killed before its first write completed: nothing to check
            continue
        doc = json.loads(path.read_text())  # would raise on a torn file
        store = DesiredStore(path)
        record = store.get("c")
        if record is not None:
            assert record["limits"]["memory_limit_bytes"] == record["generation"]
            last = record["generation"]
        leftovers = [p for p in tmp_path.iterdir() if p.name != "desired.json"]
        for p in leftovers:  # temp files of killed writers are harmless; clean them
            p.unlink()
        assert doc["version"] == 1
    assert last > 0
