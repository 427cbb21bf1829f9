"""The policy file's changes, as they happen: inotify on its directory, no timer.

The directory is watched, not the file: editors and `kubectl` replace a file by renaming another
over it (a ConfigMap volume swaps its `..data` symlink), which a watch on the old file's inode
never reports. Any change of an entry in the directory calls ``changed()``; the engine compares
the file's mtime with the one it loaded (engine.Enforcer.reload_policy), so a change to another
file of the directory costs one stat(2). The reconcile pass still compares mtimes too, for a
file inotify cannot see change (a single file bind-mounted into the agent's container).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from ..host.inotify import (IN_ATTRIB, IN_CLOSE_WRITE, IN_CREATE, IN_DELETE, IN_MOVED_FROM, IN_MOVED_TO,
                            IN_Q_OVERFLOW, Inotify)

log = logging.getLogger("cgwatch.enforce.policy")

# Written in place (closed after writing), replaced (created, renamed over), removed, touched.
WATCH_MASK = IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB


class PolicyFileWatcher:
    def __init__(self, path: Path, changed: Callable[[], None]):
        self.path = path
        self._changed = changed
        self._inotify: Inotify | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Watch; without inotify (no instance left) the file is compared at each reconcile pass
        and on SIGHUP only: logged, not raised."""
        try:
            inotify = Inotify()
        except OSError as exc:
            log.warning("cannot watch the policy file; it is reloaded on SIGHUP", extra={"error": str(exc)})
            return
        try:
            inotify.add_watch(self.path.parent, WATCH_MASK)
        except OSError as exc:
            inotify.close()
            log.warning("cannot watch the policy file's directory; it is reloaded on SIGHUP",
                        extra={"directory": str(self.path.parent), "error": str(exc)})
            return
        self._inotify = inotify
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(inotify.fileno(), self._readable)

    def stop(self) -> None:
        if self._inotify is not None and self._loop is not None:
            self._loop.remove_reader(self._inotify.fileno())
            self._inotify.close()
        self._inotify = None

    def _readable(self) -> None:
        assert self._inotify is not None
        try:
            events = self._inotify.read()
        except (OSError, ValueError) as exc:
            log.error("reading policy file events failed", extra={"error": str(exc)})
            return
        if any(ev.mask & IN_Q_OVERFLOW or ev.name == self.path.name or ev.name.startswith("..")
               for ev in events):
            self._changed()
