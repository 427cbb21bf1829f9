"""Pure pieces of the containerd adapter: records, specs and events -> what cgwatch knows, names, the
cgroupsPath forms, and the planner of a task update.

The records are containerd 1.6.20's own answers, captured by tests/fixtures/containerd/capture.py
(protobuf text format: Containers.Get, Tasks.Get, Events.Subscribe)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from google.protobuf import text_format

from cgwatch.discovery.classify import classify
from cgwatch.model import Limits
from cgwatch.runtimes.containerd.api.services.containers.v1 import containers_pb2
from cgwatch.runtimes.containerd.api.services.events.v1 import events_pb2
from cgwatch.runtimes.containerd.api.types.task import task_pb2
from cgwatch.runtimes.containerd.client import channel_target
from cgwatch.runtimes.containerd.parsing import (
    CRI_CONTAINER_METADATA,
    CRI_SANDBOX_METADATA,
    cgroup_path_of,
    container_name,
    expand_slice,
    parse_container,
    parse_envelope,
    parse_spec,
    subscription_filters,
)
from cgwatch.runtimes.containerd.plan import plan_update
from tests.conftest import FIXTURES

HERE = FIXTURES / "containerd"
CRI_ID = "0f3c5e1b2a4d6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708"
POD_UID = "6d1c1c9e-3f0b-4c55-9a57-0d2f4b1e7a11"


def load(name: str, message_type):
    return text_format.Parse((HERE / name).read_text(), message_type())


def record(name: str) -> containers_pb2.Container:
    return load(f"container-{name}.textproto", containers_pb2.Container)


RUNNING = load("task-running.textproto", task_pb2.Process)


# -- container records ----------------------------------------------------------------------------

def test_a_plain_ctr_container_is_named_by_its_id_at_its_namespace_path():
    c = parse_container("default", record("plain"), RUNNING)
    assert (c.runtime, c.id, c.name, c.namespace) == ("containerd", "plain-one", "plain-one", "default")
    assert c.image == "docker.io/local/busybox:latest"
    assert c.cgroup_path == "/default/plain-one"     # ctr's default: /<namespace>/<id>
    assert c.running and not c.kubernetes


def test_a_container_without_a_task_is_not_running():
    assert not parse_container("default", record("plain"), None).running
    stopped = replace_status(RUNNING, task_pb2.STOPPED)
    assert not parse_container("default", record("plain"), stopped).running


def replace_status(task: task_pb2.Process, status: int) -> task_pb2.Process:
    copy = task_pb2.Process()
    copy.CopyFrom(task)
    copy.status = status
    return copy


def test_a_cri_shaped_container_carries_the_pods_identity_in_its_labels():
    c = parse_container("k8s.io", record("cri-shaped"), RUNNING)
    assert c.kubernetes
    assert (c.labels["io.kubernetes.pod.name"], c.labels["io.kubernetes.pod.namespace"],
            c.labels["io.kubernetes.container.name"]) == ("web-0", "prod", "app")
    assert c.cgroup_path == f"/kubepods/besteffort/pod{POD_UID}/{CRI_ID}"
    # The pod UID is known, its attempt is not (the CRI's record is absent): the known parts only.
    assert c.name == "app_web-0_prod"


def test_the_cri_record_gives_the_cri_name_exactly():
    # The extension as containerd 1.6's CRI writes it (pkg/cri/store/container/metadata.go):
    # {"Version": "v1", "Metadata": {"ID", "Name": makeContainerName(...), ...}}.
    rec = record("cri-shaped")
    name = f"app_web-0_prod_{POD_UID}_2"
    rec.extensions[CRI_CONTAINER_METADATA].value = json.dumps(
        {"Version": "v1", "Metadata": {"ID": CRI_ID, "Name": name, "SandboxID": "f" * 64}}).encode()
    assert parse_container("k8s.io", rec, RUNNING).name == name


def test_a_sandbox_is_named_for_its_pod_and_has_no_container_label():
    labels = {"io.kubernetes.pod.name": "web-0", "io.kubernetes.pod.namespace": "prod",
              "io.kubernetes.pod.uid": POD_UID, "io.cri-containerd.kind": "sandbox"}
    assert container_name("f" * 64, labels, {}, {}) == "web-0_prod"
    sandbox = {CRI_SANDBOX_METADATA: json.dumps({"Version": "v1", "Metadata": {
        "ID": "f" * 64, "Name": f"web-0_prod_{POD_UID}_0"}}).encode()}
    assert container_name("f" * 64, labels, {}, sandbox) == f"web-0_prod_{POD_UID}_0"


@pytest.mark.parametrize("labels, annotations, expected", [
    ({"nerdctl/name": "web"}, {}, "web"),
    ({"nerdctl/name": "web", "io.kubernetes.pod.name": "p", "io.kubernetes.pod.namespace": "n"}, {}, "web"),
    ({"io.kubernetes.pod.name": "p", "io.kubernetes.pod.namespace": "n", "io.kubernetes.container.name": "c",
      "io.kubernetes.pod.uid": "u"}, {"io.kubernetes.container.restartCount": "3"}, "c_p_n_u_3"),
    ({"io.kubernetes.pod.name": "p", "io.kubernetes.pod.namespace": "n", "io.kubernetes.container.name": "c"},
     {"io.kubernetes.cri.sandbox-uid": "u", "io.kubernetes.container.restartCount": "0"}, "c_p_n_u_0"),
    ({"io.kubernetes.pod.name": "p", "io.kubernetes.container.name": "c"}, {}, "ID"),   # no namespace: not the kubelet's
    ({}, {}, "ID"),
])
def test_container_name(labels, annotations, expected):
    assert container_name("ID", labels, annotations, {}) == expected


def test_an_unreadable_spec_loses_the_path_not_the_container():
    rec = record("plain")
    rec.spec.value = b"{not json"
    c = parse_container("default", rec, RUNNING)
    assert c.cgroup_path is None and c.name == "plain-one"
    assert parse_spec(rec.spec) == {}


# -- linux.cgroupsPath ----------------------------------------------------------------------------

SYSTEMD_UID = POD_UID.replace("-", "_")


@pytest.mark.parametrize("value, expected", [
    (f"/kubepods/besteffort/pod{POD_UID}/{CRI_ID}", f"/kubepods/besteffort/pod{POD_UID}/{CRI_ID}"),
    ("/default/plain-one", "/default/plain-one"),
    ("/default/plain-one/", "/default/plain-one"),
    # The systemd driver's slice:prefix:name (the CRI with SystemdCgroup = true).
    (f"kubepods-besteffort-pod{SYSTEMD_UID}.slice:cri-containerd:{CRI_ID}",
     f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{SYSTEMD_UID}.slice/"
     f"cri-containerd-{CRI_ID}.scope"),
    (f"kubepods.slice:cri-containerd:{CRI_ID}", f"/kubepods.slice/cri-containerd-{CRI_ID}.scope"),
    (":docker:abc", "/system.slice/docker-abc.scope"),
    ("-.slice:x:y", "/x-y.scope"),
    ("relative/path", None),          # relative to runc's own cgroup: unknown here
    ("bad--slice.slice:x:y", None),
    ("", None),
    (None, None),
])
def test_cgroup_path_of(value, expected):
    assert cgroup_path_of(value) == expected


def test_a_systemd_cri_path_is_one_discovery_gives_to_containerd():
    path = cgroup_path_of(f"kubepods-burstable-pod{SYSTEMD_UID}.slice:cri-containerd:{CRI_ID}")
    ident = classify(path)
    assert (ident.runtime, ident.id, ident.pod_uid, ident.qos) == ("containerd", CRI_ID, POD_UID, "burstable")


def test_expand_slice_refuses_what_is_not_a_slice():
    assert expand_slice("a-b-c.slice") == "/a.slice/a-b.slice/a-b-c.slice"
    for bad in ("a.scope", "a/b.slice", "-a.slice", "a-.slice"):
        with pytest.raises(ValueError):
            expand_slice(bad)


# -- events ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("topic", ["/containers/create", "/tasks/start", "/tasks/exit", "/tasks/delete",
                                   "/containers/delete"])
def test_each_event_names_its_container(topic):
    envelope = load(f"event-{topic.strip('/').replace('/', '-')}.textproto", events_pb2.Envelope)
    ev = parse_envelope(envelope)
    assert (ev.namespace, ev.topic, ev.container_id) == ("default", topic, "ev-one")
    assert ev.timestamp > 1.7e9


def test_other_topics_are_not_events_of_a_container():
    envelope = load("event-tasks-start.textproto", events_pb2.Envelope)
    envelope.topic = "/images/create"
    assert parse_envelope(envelope) is None


def test_a_broken_payload_is_a_value_error():
    envelope = load("event-tasks-start.textproto", events_pb2.Envelope)
    envelope.event.value = b"\xff\xff\xff"
    with pytest.raises(ValueError):
        parse_envelope(envelope)
    envelope.event.value = b""        # decodes, but names no container
    with pytest.raises(ValueError):
        parse_envelope(envelope)


def test_the_subscription_asks_for_every_topic_parsed():
    assert 'topic=="/containers/create"' in subscription_filters()
    assert 'topic=="/tasks/oom"' in subscription_filters()  # the OOM notice (deaths/)
    assert len(subscription_filters()) == 7


@pytest.mark.parametrize("host, target", [
    ("unix:///run/containerd/containerd.sock", "unix:///run/containerd/containerd.sock"),
    ("/run/containerd/containerd.sock", "unix:///run/containerd/containerd.sock"),
])
def test_channel_target(host, target):
    assert channel_target(host) == target


@pytest.mark.parametrize("host", ["tcp://1.2.3.4:1", "unix://", "containerd.sock"])
def test_channel_target_refuses_what_is_not_a_socket(host):
    with pytest.raises(ValueError):
        channel_target(host)


# -- the planner ----------------------------------------------------------------------------------

NONE = Limits(cpu_period_us=100000, cpu_shares=1024, cpuset_cpus="0-1")


def test_cpus_become_quota_and_period():
    plan = plan_update(replace(NONE, cpu_quota_us=50000), NONE, "0-1")
    assert plan.resources == {"cpu": {"quota": 50000, "period": 100000}} and plan.unexpressible == []


def test_nothing_differs_nothing_is_sent():
    assert plan_update(NONE, NONE, "0-1").resources == {}


def test_clearing_a_quota_sends_minus_one():
    plan = plan_update(NONE, replace(NONE, cpu_quota_us=50000), "0-1")
    assert plan.resources == {"cpu": {"quota": -1, "period": 100000}}


def test_memory_goes_with_its_swap():
    current = replace(NONE, memory_limit_bytes=100 << 20, memory_swap_limit_bytes=200 << 20)
    target = replace(NONE, memory_limit_bytes=300 << 20, memory_swap_limit_bytes=400 << 20)
    assert plan_update(target, current, "0-1").resources == {"memory": {"limit": 300 << 20, "swap": 400 << 20}}
    assert plan_update(replace(target, memory_swap_limit_bytes=None), current, "0-1").resources == {
        "memory": {"limit": 300 << 20, "swap": -1}}
    # Removing the limit is expressible here (unlike Docker's update API).
    assert plan_update(NONE, current, "0-1").resources == {"memory": {"limit": -1, "swap": -1}}


def test_clears_use_runcs_spellings():
    current = replace(NONE, memory_reservation_bytes=50 << 20, pids_max=10, cpu_shares=512, cpuset_cpus="1")
    assert plan_update(NONE, current, "0-1").resources == {
        "cpu": {"shares": 1024, "cpus": "0-1"}, "memory": {"reservation": -1}, "pids": {"limit": -1}}


def test_memory_high_is_left_to_cgroupfs_and_named():
    plan = plan_update(replace(NONE, memory_high_bytes=64 << 20), NONE, "0-1")
    assert plan.resources == {} and "memory_high" in plan.unexpressible[0]
