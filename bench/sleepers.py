"""Sleeping processes started inside given cgroups, a batch at a time, by one small keeper process.

A container's process must join its cgroups between fork and exec (v1 memory does not move
charges with a migrated task: tests/support/cgroups.py). ``subprocess`` does that with a
``preexec_fn``, which forks the whole bench process and waits for each exec: 6.5 ms a container
over 3000 (cProfile of ``add_containers``), so 10,000 took minutes. Here a keeper, a small Python
process that stays small, forks them: each child writes its PID into its ``cgroup.procs`` files,
writes one byte to the batch's status pipe and execs ``sleep``. The pipe is close-on-exec, so the
keeper reads it to EOF and knows the whole batch joined and exec'd, without waiting on each child.

The keeper is every sleeper's parent: it kills and reaps them by PID when asked, on SIGTERM, and
when its stdin closes (the bench exited, even by SIGKILL). It runs in its own session, so a Ctrl-C
meant for the bench does not end it before the bench asks.

    bench -> keeper: one line per sleeper (its cgroup.procs files, space-separated), an empty line
                     ends a batch; "kill" (or EOF) ends every sleeper and the keeper
    keeper -> bench: "ok <pid> ..." per batch, or "error <what>"; "killed <count>" at the end
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import repo_path  # noqa: F401  (the repository root on sys.path: tests.support)
from tests.support.procjoin import write_pid

SLEEP = "/bin/sleep"
JOINED, FAILED = b"j", b"e"


def _child(files: list[str], status_w: int, devnull: int, seconds: str) -> None:
    """In the forked child: join, report, exec. Never returns."""
    try:
        write_pid(files)
        for target in (0, 1, 2):  # not the keeper's pipes to the bench
            os.dup2(devnull, target)
        os.write(status_w, JOINED)
        os.execv(SLEEP, [SLEEP, seconds])
    except BaseException:  # noqa: BLE001 - reported through the status pipe, the only way out
        try:
            os.write(status_w, FAILED)
        finally:
            os._exit(127)


def _spawn_batch(batch: list[list[str]], devnull: int, seconds: str, pids: list[int]) -> str:
    """Fork one sleeper per entry of ``batch``; the reply line for the bench."""
    status_r, status_w = os.pipe()  # both O_CLOEXEC: each child's copy closes at its exec
    started = []
    try:
        for files in batch:
            pid = os.fork()
            if pid == 0:
                _child(files, status_w, devnull, seconds)
            started.append(pid)
            pids.append(pid)
    finally:
        os.close(status_w)
        chunks = []
        while chunk := os.read(status_r, 65536):
            chunks.append(chunk)
        os.close(status_r)
    status = b"".join(chunks)
    if status != JOINED * len(batch):
        return f"error {status.count(FAILED)} of {len(batch)} sleepers could not join their cgroups or exec {SLEEP}"
    return "ok " + " ".join(map(str, started))


def _kill_all(pids: list[int]) -> int:
    for pid in pids:
        os.kill(pid, signal.SIGKILL)  # our unreaped children: the PID cannot be someone else's
    for pid in pids:
        os.waitpid(pid, 0)
    return len(pids)


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(0)


def keeper_main(seconds: str) -> None:
    signal.signal(signal.SIGTERM, _terminate)
    devnull = os.open(os.devnull, os.O_RDWR)
    pids: list[int] = []
    batch: list[list[str]] = []
    try:
        for line in sys.stdin:
            line = line.strip()
            if line == "kill":
                break
            if line:
                batch.append(line.split())
                continue
            print(_spawn_batch(batch, devnull, seconds, pids), flush=True)
            batch = []
    finally:
        count = _kill_all(pids)
        try:
            print(f"killed {count}", flush=True)
        except BrokenPipeError:  # the bench is gone; the sleepers are not, any more
            pass


class Sleepers:
    """The keeper, from the bench's side."""

    def __init__(self, seconds: str):
        self.proc = subprocess.Popen([sys.executable, __file__, seconds], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, start_new_session=True)
        self.pids: list[int] = []

    def submit(self, procs_files: list[list[str]]) -> None:
        """Ask for one sleeper in each entry's cgroups (its cgroup.procs files) and return at once:
        the bench makes the next batch's cgroups while the keeper forks this one."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(" ".join(files) + "\n" for files in procs_files) + "\n")
        self.proc.stdin.flush()

    def wait(self) -> list[int]:
        """The PIDs of the oldest batch submitted, once every one of them joined and exec'd."""
        assert self.proc.stdout is not None
        reply = self.proc.stdout.readline().split()
        if not reply or reply[0] != "ok":
            raise RuntimeError(f"sleeper keeper: {' '.join(reply) or 'exited'}")
        pids = [int(p) for p in reply[1:]]
        self.pids += pids
        return pids

    def stop(self, timeout_s: float = 120.0) -> bool:
        """Kill and reap every sleeper (the keeper does, and exits); False if the keeper did not
        say so: its sleepers may then be alive, orphaned."""
        proc = self.proc
        if proc.poll() is not None:
            return False
        try:
            out, _ = proc.communicate("kill\n", timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return False
        return out.startswith("killed ")


if __name__ == "__main__":
    keeper_main(sys.argv[1])
