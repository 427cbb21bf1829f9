"""A flood of container listings on the public listener cannot slow a scrape (issue 17).

What broke: each GET /api/v1/containers walked and read the whole host (50 ms of CPU at ~500
cgroups), so 100 concurrent listings pushed a /metrics scrape to 10 s, past Prometheus' default
scrape timeout. Listings now answer from the scrape's own shared collection (exporter.py), one
at a time. `cgwatch serve` runs as a subprocess with --max-age 0 (tests/support/served.py), the
hardest case: every request wants a collection begun after it arrived.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
import uuid

import pytest

from tests.support.served import serve_agent

pytestmark = pytest.mark.real

CGROUPS = 300
CLIENTS = 50
FLOOD_S = 10.0
MAX_REQUESTS_PER_CLIENT = 2000   # the flood stops at its deadline or this count, whichever is first
QUIET_SCRAPES = 10
MAX_SCRAPES = 1000               # timed during the flood, which ends first
SLACK_S = 0.5                    # a loaded 2-core CI machine


def connection(url: str) -> http.client.HTTPConnection:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=30)


def scrape_seconds(conn: http.client.HTTPConnection) -> float:
    """One /metrics as Prometheus asks for it (gzip), timed to its last byte."""
    started = time.perf_counter()
    conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 200
    return time.perf_counter() - started


class Listers:
    """CLIENTS threads, each polling GET ``path`` on one keep-alive connection until ``stop`` is
    set, FLOOD_S has passed or it has made MAX_REQUESTS_PER_CLIENT requests."""

    def __init__(self, url: str, path: str = "/api/v1/containers"):
        self._url = url
        self._path = path
        self.stop = threading.Event()
        self.answered = 0
        self.failures: list[str] = []
        self.containers: set[int] = set()
        self._lock = threading.Lock()
        self._deadline = time.monotonic() + FLOOD_S
        self._threads = [threading.Thread(target=self._poll, daemon=True) for _ in range(CLIENTS)]

    def __enter__(self) -> "Listers":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def running(self) -> bool:
        return time.monotonic() < self._deadline and not self.stop.is_set()

    def _poll(self) -> None:
        conn = connection(self._url)
        try:
            for _ in range(MAX_REQUESTS_PER_CLIENT):
                if not self.running():
                    return
                conn.request("GET", self._path)
                resp = conn.getresponse()
                body = resp.read()
                with self._lock:
                    if resp.status != 200:
                        self.failures.append(f"{resp.status} {body[:200]!r}")
                        return
                    self.answered += 1
                    if self._path == "/api/v1/containers" and self.answered % 200 == 1:
                        # Parse a sample, not every body: the client has one GIL.
                        self.containers.add(len(json.loads(body)["containers"]))
        except OSError as exc:
            with self._lock:
                self.failures.append(repr(exc))
        finally:
            conn.close()


@pytest.fixture
def many_containers(sandbox):
    for _ in range(CGROUPS):
        sandbox.create(f"docker/{uuid.uuid4().hex}{uuid.uuid4().hex}")
    return sandbox


@pytest.mark.parametrize("path", ["/api/v1/containers", "/api/v1/policy"])
def test_a_flood_of_listings_keeps_scrapes_under_twice_their_quiet_time(tmp_path, many_containers, path):
    with serve_agent(tmp_path) as served:
        scraper = connection(served.metrics)
        scrape_seconds(scraper)  # warm-up
        quiet = [scrape_seconds(scraper) for _ in range(QUIET_SCRAPES)]
        loaded: list[float] = []
        with Listers(served.metrics, path) as listers:
            while listers.running() and len(loaded) < MAX_SCRAPES:
                loaded.append(scrape_seconds(scraper))
        scraper.close()
    quiet_p50 = statistics.median(quiet)
    bound = 2 * quiet_p50 + SLACK_S
    print(f"\n{path}, {CGROUPS} cgroups: quiet scrape p50 {quiet_p50 * 1e3:.0f} ms (max {max(quiet) * 1e3:.0f}); "
          f"under {CLIENTS} listing clients for {FLOOD_S:g} s ({listers.answered} listings, "
          f"{listers.answered / FLOOD_S:.0f}/s): {len(loaded)} scrapes, p50 "
          f"{statistics.median(loaded) * 1e3:.0f} ms, max {max(loaded) * 1e3:.0f} ms (bound {bound * 1e3:.0f} ms)")
    assert not listers.failures, listers.failures[:5]
    assert listers.answered >= CLIENTS  # the flood did run
    assert path != "/api/v1/containers" or min(listers.containers) >= CGROUPS
    assert max(loaded) < bound
