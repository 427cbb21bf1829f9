"""cgwatch_event_loop_lag_seconds: how late the agent's event loop wakes a sleeping task.

Every request, scrape and timer of the agent runs on one asyncio loop; anything that blocks it
(a slow callback, CPU held by a worker thread under the GIL) delays them all. A task sleeps
INTERVAL_S again and again and records how much later than asked it woke: the overshoot is the
time the loop was busy with something else. A histogram, not a gauge, so a short stall between
two scrapes is still counted, and PromQL can take quantiles over any window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from prometheus_client import CollectorRegistry, Histogram

log = logging.getLogger("cgwatch.looplag")

# One wake-up a second. A stall of a second or more is always seen; a shorter one of L seconds with
# probability L (the sleeper must be due during it). At 0.25 s the four wakes a second were the idle
# agent's largest cost left (bench/idle_bench.py: the main thread's 4 wakes/s, ~0.02 % of a core).
INTERVAL_S = 1.0
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LoopLagMonitor:
    def __init__(self, registry: CollectorRegistry, interval_s: float = INTERVAL_S):
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self.lag = Histogram("cgwatch_event_loop_lag_seconds",
                             f"How much later than asked the agent's event loop woke a task sleeping "
                             f"{interval_s:g} s.", buckets=BUCKETS, registry=registry)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="cgwatch-loop-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + self._interval_s
            await asyncio.sleep(self._interval_s)
            self.lag.observe(max(0.0, loop.time() - asked))
