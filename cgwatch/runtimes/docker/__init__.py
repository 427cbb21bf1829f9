"""The Docker runtime adapter: containers as dockerd names them, and its API to change their limits."""

from .adapter import DockerRuntime, DockerWatcher
from .client import DockerClient, DockerError
from .parsing import DockerContainer, DockerEvent, parse_container, parse_docker_time, parse_event, parse_list_entry
from .stream import JsonStreamDecoder

__all__ = [
    "DockerClient",
    "DockerContainer",
    "DockerError",
    "DockerEvent",
    "DockerRuntime",
    "DockerWatcher",
    "JsonStreamDecoder",
    "parse_container",
    "parse_docker_time",
    "parse_event",
    "parse_list_entry",
]
