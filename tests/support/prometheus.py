"""A real Prometheus server (Debian's /usr/bin/prometheus) scraping what a test gives it."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.support.cgroups import wait_for
from tests.support.served import free_port, http, stop


def prometheus_missing() -> str | None:
    return None if shutil.which("prometheus") else "needs prometheus (Debian package prometheus)"


@dataclass(frozen=True)
class Prometheus:
    url: str
    log: Path

    def query(self, expr: str) -> list[dict]:
        """Instant query; the result vector (raises with Prometheus's message on a bad query)."""
        return self.instant(expr)["result"]

    def instant(self, expr: str) -> dict:
        """Instant query; Prometheus's ``data``: ``resultType`` and ``result`` (a scalar's result is
        ``[time, "value"]``, never empty, so "has data" depends on the type)."""
        status, body = http(f"{self.url}/api/v1/query", data=urllib.parse.urlencode({"query": expr}).encode(),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        reply = json.loads(body or b"{}")
        if status != 200 or reply.get("status") != "success":
            raise AssertionError(f"Prometheus refused {expr!r}: HTTP {status} {reply.get('error', body[:300])}")
        return reply["data"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None


@contextmanager
def running_prometheus(workdir: Path, scrape_configs: list[dict], interval: str = "2s",
                       rule_files: Sequence[Path] = ()) -> Iterator[Prometheus]:
    """Prometheus on a free loopback port with these scrape configs (and rule files, evaluated every
    ``interval`` too); SIGTERM (by PID) at the end. Config, log and TSDB in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
        "rule_files": [str(f) for f in rule_files],
        "scrape_configs": scrape_configs,
    }))
    port, log = free_port(), workdir / "prometheus.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([shutil.which("prometheus") or "prometheus", f"--config.file={config}",
                                 f"--storage.tsdb.path={workdir / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        server = Prometheus(f"http://127.0.0.1:{port}", log)
        wait_for(lambda: proc.poll() is not None or http(f"{server.url}/-/ready")[0] == 200, timeout=30, interval=0.1)
        assert proc.poll() is None, log.read_text()
        yield server
    finally:
        stop(proc)
