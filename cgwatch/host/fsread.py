"""Reading pseudo-files where "gone" is an answer, not an error.

A cgroup can be removed between listing it and reading it, and a process can exit between
reading cgroup.procs and opening /proc/<pid>/...: the kernel then answers ENOENT, ENODEV
(cgroup files of a dying cgroup) or ESRCH (/proc of an exited task). Like below's
``ok_or_absent``, those become ``None`` here, in one place, so no caller turns them into a
failed scrape.
"""

from __future__ import annotations

import errno
import os

ABSENT_ERRNOS = frozenset({errno.ENOENT, errno.ENODEV, errno.ESRCH, errno.ENOTDIR})


def is_absent(exc: OSError) -> bool:
    """True when the error means the file, cgroup or task no longer exists."""
    return exc.errno in ABSENT_ERRNOS


READ_CHUNK = 65536


def read_bytes(path: str | os.PathLike[str]) -> bytes | None:
    """The whole file as the kernel hands it out, or None when it (or its cgroup/task) does not exist.

    os.open/os.read rather than open(): a scrape reads tens of thousands of small pseudo-files,
    and the io object layer (buffering, isatty probe) costs more than the read itself. Bytes, not
    text: cgroup files are ASCII numbers and names, and int() parses bytes as they are.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        if is_absent(exc):
            return None
        raise
    try:
        # Read to EOF: a seq_file hands out at most one buffer of whole records per read(2)
        # (fs/seq_file.c), so a short read is not the end; cgroup.procs and tasks come a page
        # at a time (a 1,502-thread cgroup read as 819 when a short read was taken for EOF).
        data = os.read(fd, READ_CHUNK)
        if data:
            more = os.read(fd, READ_CHUNK)
            while more:
                data += more
                more = os.read(fd, READ_CHUNK)
        return data
    except OSError as exc:
        if is_absent(exc):
            return None
        raise
    finally:
        os.close(fd)


def read_text(path: str | os.PathLike[str]) -> str | None:
    """The whole file as text (``read_bytes`` decoded), or None when it does not exist."""
    data = read_bytes(path)
    return None if data is None else data.decode("utf-8", "replace")


def read_link(path: str | os.PathLike[str]) -> str | None:
    """A symlink's target (e.g. /proc/<pid>/ns/net -> 'net:[4026531992]'), or None if absent."""
    try:
        return os.readlink(path)
    except OSError as exc:
        if is_absent(exc):
            return None
        raise


def list_dirs(path: str | os.PathLike[str]) -> list[str]:
    """Names of the subdirectories of path ([] when path is gone)."""
    try:
        with os.scandir(path) as it:
            return [e.name for e in it if e.is_dir(follow_symlinks=False)]
    except OSError as exc:
        if is_absent(exc):
            return []
        raise
