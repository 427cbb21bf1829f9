"""container_health_state: the runtime's healthcheck verdict (Docker's State.Health.Status)."""

from __future__ import annotations

from ..discovery.inventory import Container
from .base import Collector, MetricSpec, ScrapeContext


def health_state(health: str | None) -> int:
    """cAdvisor's getContainerHealthState (lib/metrics/prometheus.go): 1 healthy, -1 without a
    healthcheck, 0 for anything else (starting, unhealthy). Docker's "none" (no healthcheck, as
    `docker ps --filter health=none` names it) is -1 as well."""
    if health == "healthy":
        return 1
    if not health or health == "none":
        return -1
    return 0


# cAdvisor exports it for every container it knows, -1 where nothing runs a healthcheck.
SPECS = (MetricSpec("container_health_state", "The result of the container's health check",
                    "gauge", lambda c: health_state(c.health)),)


class HealthCollector(Collector):
    name = "health"
    specs = SPECS

    def read(self, ctx: ScrapeContext, c: Container) -> Container:
        return c
