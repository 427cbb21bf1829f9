"""A state directory or file another user could have chosen or can change stops `cgwatch serve`.

Each case runs the real `cgwatch serve` against a prepared state directory: exit status 2, one
"refusing to start" log line naming the path, and nothing written through a planted link. The
agent runs as root, so "another user" is uid 65534 (nobody) given the files with os.chown.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.env import REPO
from tests.support.served import free_port, http, serve_agent

pytestmark = pytest.mark.real

OTHER_UID = 65534


def start(workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run `cgwatch serve` on ``workdir``/state; one that does not refuse is killed after 30 s
    (subprocess.run's timeout), so a hang fails the test instead of stalling it."""
    return subprocess.run(
        [sys.executable, "-m", "cgwatch", "serve", "--listen", f"127.0.0.1:{free_port()}",
         "--api-listen", f"127.0.0.1:{free_port()}", "--state-dir", str(workdir / "state"), "--docker-host", "", "--podman-host", "", "--containerd-host", "",
         "--ignore-cgroup", "/process_api*", *extra], capture_output=True, text=True, cwd=REPO, timeout=30)


def refusal(result: subprocess.CompletedProcess) -> str:
    """The one "refusing to start" line's error, after asserting exit status 2."""
    assert result.returncode == 2, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    [refused] = [line for line in lines if line["msg"] == "refusing to start"]
    return refused["error"]


@pytest.fixture
def state(tmp_path) -> Path:
    d = tmp_path / "state"
    d.mkdir(mode=0o700)
    return d


def private_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_state_dir_owned_by_another_user_is_refused_with_exit_2_naming_it(tmp_path, state):
    private_file(state / "token", "chosen-by-someone-else\n", 0o644)
    os.chown(state / "token", OTHER_UID, OTHER_UID)
    os.chown(state, OTHER_UID, OTHER_UID)
    error = refusal(start(tmp_path))
    assert str(state) in error and f"uid {OTHER_UID}" in error


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o1777])
def test_a_group_or_world_writable_state_dir_is_refused(tmp_path, state, mode):
    state.chmod(mode)
    error = refusal(start(tmp_path))
    assert str(state) in error and "writable by group or others" in error


def test_a_token_symlink_is_refused_and_its_target_untouched(tmp_path, state):
    target = private_file(tmp_path / "elsewhere", "chosen-by-someone-else\n")
    before = target.stat()
    (state / "token").symlink_to(target)
    error = refusal(start(tmp_path))
    assert str(state / "token") in error and "symbolic link" in error
    assert target.read_text() == "chosen-by-someone-else\n" and target.stat().st_mtime_ns == before.st_mtime_ns


def test_a_world_readable_token_is_refused(tmp_path, state):
    private_file(state / "token", "x" * 43 + "\n", 0o644)
    error = refusal(start(tmp_path))
    assert str(state / "token") in error and "readable by group or others" in error


def test_a_token_owned_by_another_user_is_refused(tmp_path, state):
    private_file(state / "token", "x" * 43 + "\n")
    os.chown(state / "token", OTHER_UID, OTHER_UID)
    assert str(state / "token") in refusal(start(tmp_path))


def test_an_audit_log_symlink_is_refused_and_its_target_untouched(tmp_path, state):
    victim = private_file(tmp_path / "victim", "root's file\n")
    (state / "audit.log").symlink_to(victim)
    error = refusal(start(tmp_path))
    assert str(state / "audit.log") in error and "symbolic link" in error
    assert victim.read_text() == "root's file\n"


def test_a_hard_linked_audit_log_is_refused(tmp_path, state):
    victim = private_file(tmp_path / "victim", "root's file\n")
    os.link(victim, state / "audit.log")
    error = refusal(start(tmp_path))
    assert str(state / "audit.log") in error and "hard links" in error
    assert victim.read_text() == "root's file\n"


def test_a_rotated_audit_log_owned_by_another_user_is_refused(tmp_path, state):
    private_file(state / "audit.log.2", "")
    os.chown(state / "audit.log.2", OTHER_UID, OTHER_UID)
    assert str(state / "audit.log.2") in refusal(start(tmp_path))


def test_a_fifo_as_desired_json_is_refused_without_hanging(tmp_path, state):
    os.mkfifo(state / "desired.json", 0o600)
    error = refusal(start(tmp_path))  # start() gives up after 30 s: a hang fails here
    assert str(state / "desired.json") in error and "not a regular file" in error


def test_a_world_readable_token_file_given_explicitly_is_refused(tmp_path, state):
    given = private_file(tmp_path / "api-token", "x" * 43 + "\n", 0o644)
    error = refusal(start(tmp_path, "--token-file", str(given)))
    assert str(given) in error and "readable by group or others" in error


def test_a_token_file_given_as_a_symlink_is_refused(tmp_path, state):
    real = private_file(tmp_path / "real-token", "x" * 43 + "\n")
    (tmp_path / "api-token").symlink_to(real)
    error = refusal(start(tmp_path, "--token-file", str(tmp_path / "api-token")))
    assert str(tmp_path / "api-token") in error and "symbolic link" in error


def test_a_missing_state_dir_is_created_private_and_the_agent_starts_again_on_it(tmp_path):
    with serve_agent(tmp_path) as served:
        token = served.token
        # A refused write creates audit.log: the second start checks it too.
        assert http(f"{served.api}/api/v1/containers/x/limits", data=b"{}", method="PATCH")[0] == 401
    state = tmp_path / "state"
    assert state.stat().st_mode & 0o777 == 0o700
    assert {p.name: p.stat().st_mode & 0o777 for p in state.iterdir()} == {"token": 0o600, "audit.log": 0o600}
    with serve_agent(tmp_path) as served:
        assert served.token == token
