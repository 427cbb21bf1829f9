"""inotify(7) over ctypes: watch directories, read what happened in them (a pure event parser).

cgwatch watches the parent cgroups where runtimes create containers (enforce/births.py): a
runtime makes a container's cgroup with mkdir(2) before it starts the user's process, and
vfs_mkdir() reports every mkdir to fsnotify (IN_CREATE), on cgroupfs (kernfs) as on any file
system. Three calls of libc are all it takes, so no dependency: inotify_init1(2),
inotify_add_watch(2), inotify_rm_watch(2); the events are read(2) from the descriptor.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from dataclasses import dataclass
from typing import NoReturn

# include/uapi/linux/inotify.h
IN_MODIFY = 0x0000_0002         # a file was written (cgroupfs: any write(2) to a control file)
IN_ATTRIB = 0x0000_0004         # metadata changed (touch, utime)
IN_CLOSE_WRITE = 0x0000_0008    # a file opened for writing was closed
IN_MOVED_FROM = 0x0000_0040
IN_MOVED_TO = 0x0000_0080
IN_CREATE = 0x0000_0100
IN_DELETE = 0x0000_0200
IN_DELETE_SELF = 0x0000_0400
IN_Q_OVERFLOW = 0x0000_4000     # the kernel's queue was full: events were lost (wd is -1)
IN_IGNORED = 0x0000_8000        # the watch is gone (removed, or its directory deleted)
IN_ONLYDIR = 0x0100_0000
IN_ISDIR = 0x4000_0000
IN_CLOEXEC = os.O_CLOEXEC
IN_NONBLOCK = os.O_NONBLOCK

# struct inotify_event { int wd; uint32_t mask; uint32_t cookie; uint32_t len; char name[]; }
_HEADER = struct.Struct("=iIII")
# One read(2) returns whole events only; 64 KiB holds hundreds of them (a name is at most 255 bytes).
READ_SIZE = 65536


@dataclass(frozen=True, slots=True)
class Event:
    """One inotify event: the watch it came from, what happened, and the entry's name ('' for
    events about the watched directory itself)."""

    wd: int
    mask: int
    cookie: int
    name: str

    @property
    def is_dir(self) -> bool:
        return bool(self.mask & IN_ISDIR)


def parse_events(buf: bytes) -> list[Event]:
    """The events in one read(2) of an inotify descriptor. The name is NUL-padded to an
    alignment boundary (``len`` counts the padding), as inotify(7) describes; a truncated tail
    raises ValueError (the kernel never splits an event across reads)."""
    events = []
    offset = 0
    while offset < len(buf):
        if len(buf) - offset < _HEADER.size:
            raise ValueError(f"truncated inotify event header at byte {offset}")
        wd, mask, cookie, length = _HEADER.unpack_from(buf, offset)
        offset += _HEADER.size
        if len(buf) - offset < length:
            raise ValueError(f"truncated inotify event name at byte {offset}")
        raw = buf[offset:offset + length]
        offset += length
        events.append(Event(wd, mask, cookie, raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")))
    return events


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.inotify_init1.argtypes = [ctypes.c_int]
    libc.inotify_init1.restype = ctypes.c_int
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    libc.inotify_add_watch.restype = ctypes.c_int
    libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.inotify_rm_watch.restype = ctypes.c_int
    return libc


class Inotify:
    """One non-blocking inotify descriptor. ``fileno()`` is for the event loop's add_reader;
    ``read()`` returns what is queued ([] when nothing is). Raises OSError where the kernel does
    (ENOSPC: fs.inotify.max_user_watches reached; EMFILE: max_user_instances)."""

    def __init__(self) -> None:
        self._libc = _libc()
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            _raise("inotify_init1")
        self._fd = fd

    def fileno(self) -> int:
        return self._fd

    def add_watch(self, path: str | os.PathLike[str], mask: int) -> int:
        """Watch ``path``; returns its watch descriptor (the same one again for a path already
        watched: inotify keys watches by inode, and the mask is replaced)."""
        wd = self._libc.inotify_add_watch(self._fd, os.fsencode(path), mask)
        if wd < 0:
            _raise("inotify_add_watch", path)
        return wd

    def rm_watch(self, wd: int) -> None:
        if self._libc.inotify_rm_watch(self._fd, wd) < 0:
            _raise("inotify_rm_watch")

    def read(self) -> list[Event]:
        try:
            return parse_events(os.read(self._fd, READ_SIZE))
        except BlockingIOError:
            return []

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Inotify:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _raise(call: str, path: str | os.PathLike[str] | None = None) -> NoReturn:
    err = ctypes.get_errno() or errno.EIO
    raise OSError(err, f"{call}: {os.strerror(err)}", *([os.fspath(path)] if path is not None else []))
