"""What of a target containerd's task update can say: the OCI LinuxResources (../oci.py) that
containerd passes to the shim, which runs `runc update --resources -` (checked against containerd
1.6.20 with runc 1.1 on cgroup v1 here)."""

from __future__ import annotations

from ...model import Limits
from ..oci import ResourcesPlan, plan_resources


def plan_update(target: Limits, current: Limits, allowed_cpus: str | None) -> ResourcesPlan:
    """The LinuxResources for the fields of ``target`` that differ from ``current``."""
    return plan_resources(target, current, allowed_cpus, runtime="containerd")
