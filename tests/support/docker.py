"""The suite's own dockerd (started by tests/support/docker-up.sh) and containers that clean up."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

IMAGE = "local/busybox"
# The suite's dockerd listens in its work dir, never on the host's /var/run/docker.sock: the same
# socket as tests/support/docker-env.sh. The agents under test get DOCKER_HOST as docker_host, and
# the `docker` CLI gets it from the environment (tests/conftest.py sets it for the whole run).
WORK = Path(os.environ.get("CGWATCH_WORK", "/tmp/cgwatch-ci"))
SOCKET = WORK / "docker.sock"
DOCKER_HOST = f"unix://{SOCKET}"


def docker_missing() -> str | None:
    """None when the suite's dockerd answers and has the test image; otherwise what is missing."""
    try:
        subprocess.run(["docker", "image", "inspect", IMAGE], check=True, capture_output=True, timeout=20)
    except FileNotFoundError:
        return "needs the docker CLI and a running dockerd (tests/support/docker-up.sh)"
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return f"needs a dockerd on {SOCKET} with image {IMAGE} (bash tests/support/docker-up.sh, as root)"
    return None


class Containers:
    """Starts containers named cgw-test-*, removes them by ID at the end."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def run(self, *args: str, cmd: tuple[str, ...] = ("sleep", "600")) -> tuple[str, str]:
        name = f"cgw-test-{uuid.uuid4().hex[:10]}"
        out = subprocess.run(["docker", "run", "-d", "--name", name, *args, IMAGE, *cmd],
                             check=True, capture_output=True, text=True, timeout=60)
        cid = out.stdout.strip()
        self.ids.append(cid)
        return cid, name

    @staticmethod
    def inspect(cid: str) -> dict:
        out = subprocess.run(["docker", "inspect", cid], check=True, capture_output=True, text=True, timeout=30)
        return json.loads(out.stdout)[0]

    def cleanup(self) -> None:
        if self.ids:
            subprocess.run(["docker", "rm", "-f", *self.ids], capture_output=True, timeout=60)
