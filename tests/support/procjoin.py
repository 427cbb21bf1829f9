"""Joining cgroups between fork and exec: what a runtime's process does before the user's program.

Plain syscalls only (no allocation-heavy Python, no locks): it runs in a forked child, from
``subprocess``'s ``preexec_fn`` (tests/support/cgroups.py) or the bench's sleeper keeper
(bench/sleepers.py). v1 memory does not move charges with a task migrated later, so a process must
be in its cgroups before it allocates.
"""

from __future__ import annotations

import os
from collections.abc import Iterable


def write_pid(procs_files: Iterable[str | os.PathLike[str]]) -> None:
    """This process's PID into each ``cgroup.procs``."""
    pid = str(os.getpid()).encode()
    for f in procs_files:
        fd = os.open(f, os.O_WRONLY)
        try:
            os.write(fd, pid)
        finally:
            os.close(fd)
