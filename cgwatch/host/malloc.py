"""glibc's malloc told to give large blocks back: what keeps the agent's RSS near what it uses.

Every collection allocates the exposition (8 MB at 1000 containers) and the API's listing (1 MB)
and frees the one before. glibc serves a block of at least M_MMAP_THRESHOLD with its own mmap
and unmaps it when freed, but the threshold is dynamic (mallopt(3)): freeing such a block raises
it to that block's size, so from the second collection on the bodies come from the heap, whose
freed pages stay in the process. Measured at 1000 containers over 100 collections
(bench/PROFILE.md): RSS 84-91 MB with the dynamic threshold, 73 MB with it fixed at its default.
Setting it (or any of the thresholds) fixes it, which is what this does, once, at start.
Elsewhere (musl, macOS) there is no mallopt or it ignores the call: nothing happens.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3          # malloc.h
DEFAULT_MMAP_THRESHOLD = 128 * 1024


def fix_mmap_threshold(nbytes: int = DEFAULT_MMAP_THRESHOLD) -> bool:
    """Blocks of at least ``nbytes`` are mmap'd and returned to the kernel when freed, from now on.
    True when the C library took it."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, nbytes) == 1
