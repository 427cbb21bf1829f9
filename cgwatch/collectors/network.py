"""Network counters per interface, from the container's own network namespace.

/proc/<pid>/net/dev shows the namespace of <pid>, so one PID of the container is enough and no
setns() is needed. A cgroup whose processes share the host's namespace gets no series (they
would repeat the host's counters once per cgroup), except the root cgroup "/", which reports
the host's interfaces as cAdvisor does. Interfaces cAdvisor ignores are skipped for every cgroup,
the root's included: without that the root's veth/docker ends count the containers' traffic again.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter

from ..exposition import Family
from ..model import NetDev
from .base import Collector, MetricSpec, ScrapeContext, build_families

# cAdvisor's ignoredDevicePrefixes (container/libcontainer/handler.go, isIgnoredDevice): loopback,
# the host ends of veth pairs, Docker's and nerdctl's bridges. Matched case-insensitively, as there.
IGNORED_PREFIXES = ("lo", "veth", "docker", "nerdctl")


def is_ignored_interface(name: str) -> bool:
    """Whether cAdvisor leaves this interface out of a container's (or the host's) network series."""
    return name.lower().startswith(IGNORED_PREFIXES)


# container_network_<name>_total, its help, the NetDev field it reads.
COUNTERS = (
    ("receive_bytes", "Cumulative count of bytes received", "rx_bytes"),
    ("receive_packets", "Cumulative count of packets received", "rx_packets"),
    ("receive_errors", "Cumulative count of errors encountered while receiving", "rx_errors"),
    ("receive_packets_dropped", "Cumulative count of packets dropped while receiving", "rx_dropped"),
    ("transmit_bytes", "Cumulative count of bytes transmitted", "tx_bytes"),
    ("transmit_packets", "Cumulative count of packets transmitted", "tx_packets"),
    ("transmit_errors", "Cumulative count of errors encountered while transmitting", "tx_errors"),
    ("transmit_packets_dropped", "Cumulative count of packets dropped while transmitting", "tx_dropped"),
)
INTERFACE = (("interface", attrgetter("interface")),)
SPECS = tuple(MetricSpec(f"container_network_{name}_total", help_, "counter", attrgetter(field), labels=INTERFACE)
              for name, help_, field in COUNTERS)


class NetworkCollector(Collector):
    name = "network"
    specs = SPECS

    def collect(self, ctx: ScrapeContext) -> Iterable[Family]:
        host_ns = ctx.proc.host_net_ns()
        rows = ((ctx.labels(c), dev) for c in ctx.containers
                for dev in self._interfaces(ctx, c.path, host_ns) or ()
                if not is_ignored_interface(dev.interface))
        return build_families(self.specs, rows)

    @staticmethod
    def _interfaces(ctx: ScrapeContext, path: str, host_ns: int | None) -> list[NetDev] | None:
        if path == "/":
            return ctx.proc.net_dev(1)
        # Try a few PIDs: the first may exit between reading cgroup.procs and /proc.
        for pid in ctx.procs(path)[:3]:
            ns = ctx.proc.ns_inode(pid, "net")
            if ns is None:
                continue
            if ns == host_ns:
                return None
            devs = ctx.proc.net_dev(pid)
            if devs is not None:
                return devs
        return None
