"""The containerd runtime adapter (and so Kubernetes with containerd): containers named and labelled
from containerd's gRPC API, followed through its event service, their limits changed through its
task update.

    client.py    the gRPC calls (grpc.aio over the unix socket), every failure a ContainerdError
    parsing.py   records, specs and events -> RuntimeContainer, names (pure)
    plan.py      a target -> the OCI LinuxResources of a task update (pure)
    source.py    containerd as CacheWatcher's source: every namespace listed, events keyed alike
    adapter.py   ContainerdRuntime: the seam (runtimes/base.py)
    api/         generated from proto/ (containerd 1.6's .proto files): proto/generate.sh

Importing this package imports grpc: runtimes.build_runtimes does it only when --containerd-host is set.
"""

from .adapter import ContainerdRuntime, ContainerdWatcher
from .client import ContainerdClient, ContainerdError
from .parsing import container_name, parse_container, parse_envelope
from .plan import plan_update

__all__ = [
    "ContainerdClient",
    "ContainerdError",
    "ContainerdRuntime",
    "ContainerdWatcher",
    "container_name",
    "parse_container",
    "parse_envelope",
    "plan_update",
]
