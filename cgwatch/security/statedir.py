"""The state directory is checked before anything in it is trusted, and its files are opened safely.

The token in it authorises writes and root appends to its audit log, so a directory or a file
another user owns or can write (a token they chose, an ``audit.log`` symlink to /etc/shadow)
stops the agent; nothing is repaired silently. The rules are OpenSSH's StrictModes for
~/.ssh (sshd_config(5)): owned by the user, writable by no one else; a secret readable by no
one else. Files are opened with O_NOFOLLOW (open(2)) and checked with fstat on that very
descriptor, so a file swapped after the check is not the one read.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

# Files whose content the agent trusts; "audit.log.*" are the rotated logs.
SECRET_FILES = frozenset({"token"})


class UnsafeStateDir(ValueError):
    """A state directory or file another user could have chosen or can change: the agent refuses to start."""


def check_state_dir(state_dir: Path, token_file: Path | None = None) -> None:
    """Create ``state_dir`` (0700) if missing; raise UnsafeStateDir if it or any entry is unsafe."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = os.stat(state_dir)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeStateDir(f"state directory {state_dir} is not a directory")
    _check_owner_and_mode(state_dir, st, secret=False)
    for entry in os.scandir(state_dir):
        path = Path(entry.path)
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            _check_owner_and_mode(path, st, secret=False)
        else:
            check_file(path, st, secret=entry.name in SECRET_FILES)
    if token_file is not None:
        check_file(token_file, os.lstat(token_file), secret=True)


def check_file(path: Path, st: os.stat_result, *, secret: bool) -> None:
    """A regular file with one link, the agent's, writable (``secret``: readable) by no one else."""
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeStateDir(f"{path} is a symbolic link; refusing to follow it")
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeStateDir(f"{path} is not a regular file (mode {stat.filemode(st.st_mode)})")
    # A second name could be a hard link someone made to a file of ours they want appended to.
    if st.st_nlink != 1:
        raise UnsafeStateDir(f"{path} has {st.st_nlink} hard links; expected 1")
    _check_owner_and_mode(path, st, secret=secret)


def _check_owner_and_mode(path: Path, st: os.stat_result, *, secret: bool) -> None:
    if st.st_uid != os.geteuid():
        raise UnsafeStateDir(f"{path} is owned by uid {st.st_uid}, not by the agent's user (uid {os.geteuid()})")
    if st.st_mode & 0o022:
        raise UnsafeStateDir(f"{path} is writable by group or others (mode {stat.filemode(st.st_mode)})")
    if secret and st.st_mode & 0o044:
        raise UnsafeStateDir(f"{path} is readable by group or others (mode {stat.filemode(st.st_mode)}); "
                             "it holds the API token")


def read_checked(path: Path, *, secret: bool = False) -> bytes:
    """The bytes of ``path``, opened without following a link and checked as ``check_file`` does.

    O_NONBLOCK: a FIFO put in a file's place must not hang the open (fifo(7)); it then fails the
    regular-file check. Raises FileNotFoundError when it is missing.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        check_file(path, os.fstat(fd), secret=secret)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: temp file, fsync, rename, fsync the directory (rename(2)).

    mkstemp creates the temp file with O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600, under a random name:
    a name planted in advance (a symlink, a FIFO) makes it pick another, never write through it.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
