"""The Podman runtime adapter: containers as Podman names them, and its libpod API to change their limits."""

from .adapter import PodmanRuntime, PodmanWatcher
from .client import PodmanClient, PodmanError
from .parsing import PodmanContainer, PodmanEvent, parse_container, parse_event, parse_list_entry, parse_version
from .plan import plan_update

__all__ = [
    "PodmanClient",
    "PodmanContainer",
    "PodmanError",
    "PodmanEvent",
    "PodmanRuntime",
    "PodmanWatcher",
    "parse_container",
    "parse_event",
    "parse_list_entry",
    "parse_version",
    "plan_update",
]
