"""What of a target Podman's libpod API can say, as a ``POST /libpod/containers/{id}/update`` body:
an OCI LinuxResources that Podman hands to ``runc update --resources`` (libpod/oci_conmon_common.go),
so runc's rules apply (../oci.py). Podman's own, checked by hand against Podman 4.3.1:
  - Every change goes to the kernel only. Podman before 5.1 keeps no record of it (``podman
    inspect`` shows the limits the container was created with, and a restart brings them back:
    ``record_note``; libpod/container_internal.go ``update`` only runs the OCI runtime). 5.1
    records it (podman PR #22322), but until 5.4 a partial body replaces the record's whole
    resources block (podman commit 8f1266c, "Fix overwriting of LinuxResources structure").
"""

from __future__ import annotations

from ...model import Limits
from ..oci import ResourcesPlan, plan_resources

UPDATE_SINCE = (4, 3, 0)    # the first Podman with POST /libpod/containers/{id}/update
RECORDS_SINCE = (5, 1, 0)   # the first that saves the change in the container's config


def plan_update(target: Limits, current: Limits, all_cpus: str | None) -> ResourcesPlan:
    """The update body (``.resources``) for the fields that change; the rest is left to cgroupfs."""
    return plan_resources(target, current, all_cpus, runtime="Podman")


def _dotted(version: tuple[int, int, int]) -> str:
    return ".".join(map(str, version))


def update_unsupported(version: tuple[int, int, int] | None) -> str | None:
    """The note for a Podman without the update endpoint (None: it has one, or it is unknown)."""
    if version is None or version >= UPDATE_SINCE:
        return None
    return (f"podman {_dotted(version)} has no update API (Podman {_dotted(UPDATE_SINCE)} added it): "
            "written through cgroupfs")


def record_note(version: tuple[int, int, int] | None) -> str | None:
    """What a reply says after an update went through a Podman that does not record it."""
    if version is not None and version >= RECORDS_SINCE:
        return None
    which = f"podman {_dotted(version)}" if version is not None else "this podman"
    return (f"{which} applied the change to the running container but does not record it (Podman "
            f"{_dotted(RECORDS_SINCE)} does): `podman inspect` still shows the limits it was created with, "
            "and they come back if podman restarts it")
