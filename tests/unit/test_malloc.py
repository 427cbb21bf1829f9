"""glibc's mmap threshold fixed at start (host/malloc.py): a freed large body goes back to the kernel."""

from __future__ import annotations

import subprocess
import sys

import pytest

# 20 collections' worth of an 8 MiB body, each touched and freed, as the exporter does; the
# process's RSS growth over them in KiB.
CODE = """
import re, sys
from cgwatch.host.malloc import fix_mmap_threshold
if sys.argv[1] == "fixed" and not fix_mmap_threshold():
    sys.exit(3)
def rss():
    return int(re.search(r"VmRSS:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
base = rss()
for _ in range(20):
    body = bytearray(8 << 20)
    body[::4096] = b"\\1" * (len(body) // 4096)
    del body
print(rss() - base)
"""


def growth_kib(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", CODE, mode], capture_output=True, text=True, timeout=60)
    if out.returncode == 3:
        pytest.skip("this C library has no mallopt(M_MMAP_THRESHOLD) (not glibc)")
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


def test_a_freed_body_stays_in_the_process_with_glibcs_dynamic_threshold_and_not_with_it_fixed():
    assert growth_kib("dynamic") >= 4096   # the second body came from the heap, and stayed
    assert growth_kib("fixed") < 1024
