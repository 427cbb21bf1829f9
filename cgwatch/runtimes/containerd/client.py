"""containerd's gRPC API over its unix socket: namespaces, containers, tasks, task update and the
event stream (containerd 1.6's api/services/*/v1, vendored in proto/).

Every failure is a ContainerdError: ``status`` None when containerd cannot be reached (no socket,
refused, UNAVAILABLE, a deadline, a connection that broke), otherwise the gRPC status code's number
(the message starts with its name: ``NOT_FOUND: ...``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2, message_factory
from grpc import aio

from ..base import RuntimeApiError
from .api.services.containers.v1 import containers_pb2
from .api.services.events.v1 import events_pb2
from .api.services.namespaces.v1 import namespace_pb2
from .api.services.tasks.v1 import tasks_pb2
from .api.types.task import task_pb2

# The namespace of a call travels as gRPC metadata (containerd's namespaces/grpc.go).
NAMESPACE_HEADER = "containerd-namespace"
# What `ctr tasks update` sends: the OCI LinuxResources as JSON in an Any under this type URL
# (containerd's typeurl registers runtime-spec types as types.containerd.io/<package path>/<name>).
LINUX_RESOURCES_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources"
# containerd's own client accepts answers up to 16 MiB (defaults.DefaultMaxRecvMsgSize); gRPC's 4 MiB
# default is too small for a large Tasks.List.
MAX_RECV_BYTES = 16 << 20
# gRPC waits up to 120 s between attempts to reconnect a channel by default: a containerd back after a
# restart would stay "unreachable" for up to two minutes. Keep to the watcher's own backoff (0.5-10 s).
_CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_RECV_BYTES),
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.min_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 10_000),
)
# The codes that mean "not reached" rather than "containerd said no": the socket is absent or the
# daemon went away (UNAVAILABLE; CANCELLED when the connection closes mid-call), or no answer came.
_UNREACHABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                          grpc.StatusCode.CANCELLED})
NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]


class ContainerdError(RuntimeApiError):
    """containerd said no (``status``: the gRPC code's number) or could not be reached (None)."""


def channel_target(host: str) -> str:
    """``unix:///run/containerd/containerd.sock`` or a bare socket path -> a gRPC target."""
    if host.startswith("/"):
        return f"unix://{host}"
    if host.startswith("unix://") and len(host) > len("unix://"):
        return host
    raise ValueError(f"containerd host {host!r}: use unix:///path/to/containerd.sock")


def _error(exc: aio.AioRpcError, what: str, host: str) -> ContainerdError:
    code = exc.code()
    if code in _UNREACHABLE:
        return ContainerdError(None, f"{what}: {host} unreachable ({code.name}: {exc.details()})")
    return ContainerdError(code.value[0], f"{code.name}: {exc.details()}")


R = TypeVar("R")


class _Methods:
    """The calls used here, built from the generated service descriptors: the wire path is
    ``/<package>.<Service>/<Method>``, the request and answer types are the descriptor's. (No
    grpc_tools stubs are committed: their import-time check would tie grpcio to the generator's
    version; see proto/README.md.)"""

    def __init__(self, channel: aio.Channel):
        namespaces = namespace_pb2.DESCRIPTOR.services_by_name["Namespaces"]
        containers = containers_pb2.DESCRIPTOR.services_by_name["Containers"]
        tasks = tasks_pb2.DESCRIPTOR.services_by_name["Tasks"]
        events = events_pb2.DESCRIPTOR.services_by_name["Events"]
        self.list_namespaces = _method(channel, namespaces, "List")
        self.get_container = _method(channel, containers, "Get")
        self.list_containers = _method(channel, containers, "ListStream")
        self.get_task = _method(channel, tasks, "Get")
        self.list_tasks = _method(channel, tasks, "List")
        self.update_task = _method(channel, tasks, "Update")
        self.subscribe = _method(channel, events, "Subscribe")


def _method(channel: aio.Channel, service: Any, name: str) -> Any:
    m = service.methods_by_name[name]
    request = message_factory.GetMessageClass(m.input_type)
    answer = message_factory.GetMessageClass(m.output_type)
    make = channel.unary_stream if m.server_streaming else channel.unary_unary
    return make(f"/{service.full_name}/{m.name}", request_serializer=request.SerializeToString,
                response_deserializer=answer.FromString)


class EventSubscription:
    """An open Events.Subscribe call: iterate it for containerd's Envelopes; ends with a
    ContainerdError(None, ...) when the daemon goes away. ``aclose`` cancels it."""

    def __init__(self, call: Any, host: str):
        self._call = call
        self._host = host

    def __aiter__(self) -> AsyncIterator[events_pb2.Envelope]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[events_pb2.Envelope]:
        try:
            async for envelope in self._call:
                yield envelope
        except aio.AioRpcError as exc:
            raise _error(exc, "event stream", self._host) from exc

    async def aclose(self) -> None:
        self._call.cancel()


class ContainerdClient:
    """Async containerd client; the channel is made on first use (it belongs to the running loop)."""

    def __init__(self, host: str, timeout: float = 5.0):
        self.host = host
        self._target = channel_target(host)
        self._timeout = timeout
        self._channel: aio.Channel | None = None
        self._methods: _Methods | None = None

    def _calls(self) -> _Methods:
        if self._methods is None:
            self._channel = aio.insecure_channel(self._target, options=_CHANNEL_OPTIONS)
            self._methods = _Methods(self._channel)
        return self._methods

    @staticmethod
    def _ns(namespace: str) -> tuple[tuple[str, str], ...]:
        return ((NAMESPACE_HEADER, namespace),)

    async def _unary(self, what: str, call: Callable[[], Awaitable[R]]) -> R:
        try:
            return await call()
        except aio.AioRpcError as exc:
            raise _error(exc, what, self.host) from exc

    async def _get(self, what: str, call: Callable[[], Awaitable[R]]) -> R | None:
        """A Get whose NOT_FOUND is an answer (None), not an error."""
        try:
            return await self._unary(what, call)
        except ContainerdError as exc:
            if exc.status == NOT_FOUND:
                return None
            raise

    async def namespaces(self) -> list[str]:
        m = self._calls()
        answer = await self._unary("Namespaces.List", lambda: m.list_namespaces(
            namespace_pb2.ListNamespacesRequest(), timeout=self._timeout))
        return [n.name for n in answer.namespaces]

    async def containers(self, namespace: str, filters: Iterable[str] = ()) -> list[containers_pb2.Container]:
        """Containers.ListStream: one message per container, so no answer size limit applies to the
        whole list. ``filters`` are containerd filter expressions, ORed."""
        m = self._calls()
        call = m.list_containers(containers_pb2.ListContainersRequest(filters=list(filters)),
                                 metadata=self._ns(namespace), timeout=self._timeout * 4)
        try:
            return [msg.container async for msg in call]
        except aio.AioRpcError as exc:
            raise _error(exc, "Containers.ListStream", self.host) from exc

    async def container(self, namespace: str, container_id: str) -> containers_pb2.Container | None:
        m = self._calls()
        answer = await self._get("Containers.Get", lambda: m.get_container(
            containers_pb2.GetContainerRequest(id=container_id), metadata=self._ns(namespace),
            timeout=self._timeout))
        return None if answer is None else answer.container

    async def tasks(self, namespace: str) -> list[task_pb2.Process]:
        m = self._calls()
        answer = await self._unary("Tasks.List", lambda: m.list_tasks(
            tasks_pb2.ListTasksRequest(), metadata=self._ns(namespace), timeout=self._timeout))
        return list(answer.tasks)

    async def task(self, namespace: str, container_id: str) -> task_pb2.Process | None:
        m = self._calls()
        answer = await self._get("Tasks.Get", lambda: m.get_task(
            tasks_pb2.GetRequest(container_id=container_id), metadata=self._ns(namespace),
            timeout=self._timeout))
        return None if answer is None else answer.process

    async def update_task(self, namespace: str, container_id: str, resources: Mapping[str, Any]) -> None:
        """Tasks.Update with an OCI LinuxResources (JSON), as `ctr tasks update` sends it: the shim
        runs `runc update --resources -`, which writes the cgroup and keeps the values in runc's state."""
        m = self._calls()
        request = tasks_pb2.UpdateTaskRequest(
            container_id=container_id,
            resources=any_pb2.Any(type_url=LINUX_RESOURCES_TYPE_URL,
                                  value=json.dumps(dict(resources), separators=(",", ":")).encode()))
        await self._unary("Tasks.Update", lambda: m.update_task(
            request, metadata=self._ns(namespace), timeout=self._timeout))

    async def subscribe(self, filters: Iterable[str] = ()) -> EventSubscription:
        """Events.Subscribe across every namespace (no namespace header: containerd's exchange then
        sends all of them). Returns once containerd has answered a call made after it; raises
        ContainerdError(None, ...) when containerd cannot be reached.

        Nothing says when containerd has taken the subscription: grpc-go sends a stream's headers
        with its first message, so waiting for them waits for the first event. A unary call sent
        behind it on the same connection stands in: once containerd answers that, the subscription
        has reached it, and a listing made afterwards misses no change (a change in the few
        microseconds containerd takes to register it aside)."""
        m = self._calls()
        call = m.subscribe(events_pb2.SubscribeRequest(filters=list(filters)))
        try:
            await self.namespaces()
        except ContainerdError:
            call.cancel()
            raise
        if call.done():  # refused outright (a bad filter): say why
            try:
                await call.wait_for_connection()
            except aio.AioRpcError as exc:
                raise _error(exc, "Events.Subscribe", self.host) from exc
        return EventSubscription(call, self.host)

    async def close(self) -> None:
        channel, self._channel, self._methods = self._channel, None, None
        if channel is not None:
            await channel.close()

