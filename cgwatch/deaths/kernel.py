"""The kernel's OOM notifications for one cgroup, as a file descriptor an epoll loop can wait on.

v1 (Documentation/admin-guide/cgroup-v1/memory.rst "OOM Control", cgroups.rst "notification
API"): write "<eventfd> <fd of memory.oom_control>" to the cgroup's cgroup.event_control and the
eventfd is signalled each time the cgroup (or an ancestor whose limit it shares) runs out of memory,
before the OOM killer picks its victim, and once more when the cgroup is removed ("Notify userspace
about cgroup removing only after rmdir of cgroup directory", mm/memcontrol-v1.c). Measured here: the
notification's read of oom_kill still gives the old value; a read a few ms later the new one.

v2 (Documentation/admin-guide/cgroup-v2.rst "memory.events": "A value change in this file generates
a file modified event"): kernfs marks an open memory.events readable with POLLPRI until it is read
again (kernfs_generic_poll), so the open file itself is the descriptor; ``oom`` rises when the OOM
begins, ``oom_kill`` at the kill. Removal wakes nobody on v2 (measured in the guest): the walk says
when a cgroup is gone.

Each registration keeps the control file open and reads it with pread(2): the descriptor stays on
the cgroup it was opened in, so a cgroup made again at the same path is never mistaken for it (a
read of a removed cgroup's file gives ENODEV).
"""

from __future__ import annotations

import ctypes
import os
import select
import struct

from ..host.fsread import is_absent
from ..host.parse import parse_flat_keyed

READ_SIZE = 4096
# statfs(2) f_type of cgroupfs (include/uapi/linux/magic.h).
CGROUP_SUPER_MAGIC = 0x27E0EB
CGROUP2_SUPER_MAGIC = 0x63677270


def on_cgroupfs(path: str) -> bool:
    """Whether ``path`` is on a cgroup filesystem: registering means writing cgroup.event_control,
    which must never happen to a copy of the files (a fixture tree a test points the agent at)."""
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(256)  # struct statfs; f_type (a long) comes first on Linux
    if libc.statfs(os.fsencode(path), buf) != 0:
        return False
    return struct.unpack_from("l", buf)[0] in (CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC)


class Gone(Exception):
    """The cgroup the registration was made in no longer exists."""


def pread_text(fd: int) -> str:
    try:
        return os.pread(fd, READ_SIZE, 0).decode("ascii", "replace")
    except OSError as exc:
        if is_absent(exc):
            raise Gone() from exc
        raise


class Registration:
    """One cgroup's notifications: ``fileno()`` for epoll with ``events``; ``signals()`` after a
    wake; ``read()`` the kernel's (oom events, oom kills) now."""

    events: int
    fds_per_registration: int
    # Whether the cgroup's removal wakes the descriptor (v1's eventfd does; v2's memory.events does
    # not): where it does not, the watcher rereads every registration now and then to find the gone.
    removal_wakes: bool

    def fileno(self) -> int:
        raise NotImplementedError

    def signals(self) -> int:
        """How many notifications the wake was for (v1 counts them; v2 says only "changed": 1)."""
        raise NotImplementedError

    def read(self) -> tuple[int | None, int]:
        """(OOMs begun if the kernel says, OOM kills); raises Gone."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class V1Registration(Registration):
    events = select.EPOLLIN
    fds_per_registration = 2
    removal_wakes = True

    def __init__(self, directory: str):
        self._control = os.open(f"{directory}/memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._eventfd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        except OSError:
            os.close(self._control)
            raise
        try:
            fd = os.open(f"{directory}/cgroup.event_control", os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, f"{self._eventfd} {self._control}".encode())
            finally:
                os.close(fd)
        except OSError:
            self.close()
            raise

    def fileno(self) -> int:
        return self._eventfd

    def signals(self) -> int:
        try:
            return os.eventfd_read(self._eventfd)
        except BlockingIOError:
            return 0

    def read(self) -> tuple[int | None, int]:
        # "oom_kill" appeared in memory.oom_control in Linux 4.13; v1 has no count of OOMs begun.
        return None, parse_flat_keyed(pread_text(self._control)).get("oom_kill", 0)

    def close(self) -> None:
        # Closing the eventfd unregisters the event (the kernel's wait queue sees EPOLLHUP).
        for fd in (self._eventfd, self._control):
            try:
                os.close(fd)
            except OSError:
                pass


class V2Registration(Registration):
    events = select.EPOLLPRI
    fds_per_registration = 1
    removal_wakes = False

    def __init__(self, directory: str):
        self._fd = os.open(f"{directory}/memory.events", os.O_RDONLY | os.O_CLOEXEC)

    def fileno(self) -> int:
        return self._fd

    def signals(self) -> int:
        return 1

    def read(self) -> tuple[int | None, int]:
        fields = parse_flat_keyed(pread_text(self._fd))  # the read also clears POLLPRI
        return fields.get("oom", 0), fields.get("oom_kill", 0)

    def close(self) -> None:
        try:
            os.close(self._fd)
        except OSError:
            pass
