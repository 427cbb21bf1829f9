"""Every cgroup shape a runtime makes, and what cgwatch calls it."""

from __future__ import annotations

import pytest

from cgwatch.discovery.classify import Identity, classify

ID = "a" * 64
UID = "0f8e6c1a-3b2d-4c5e-9f70-123456789abc"


@pytest.mark.parametrize("path, expected", [
    ("/", Identity("raw", "/")),
    (f"/docker/{ID}", Identity("docker", ID)),
    (f"/system.slice/docker-{ID}.scope", Identity("docker", ID)),
    (f"/kubepods/burstable/pod{UID}/{ID}", Identity("cri", ID, UID, "burstable")),
    (f"/kubepods/pod{UID}/{ID}", Identity("cri", ID, UID, "guaranteed")),
    (f"/kubepods/besteffort/pod{UID}", Identity("kubernetes", UID, UID, "besteffort")),
    (f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID.replace('-', '_')}.slice/"
     f"cri-containerd-{ID}.scope", Identity("containerd", ID, UID, "burstable")),
    (f"/kubepods.slice/kubepods-pod{UID.replace('-', '_')}.slice/crio-{ID}.scope",
     Identity("cri-o", ID, UID, "guaranteed")),
    (f"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID.replace('-', '_')}.slice",
     Identity("kubernetes", UID, UID, "besteffort")),
    (f"/machine.slice/libpod-{ID}.scope", Identity("podman", ID)),
    (f"/libpod_parent/libpod-{ID}", Identity("podman", ID)),
    ("/system.slice/cron.service", Identity("systemd", "cron.service")),
    ("/user.slice", Identity("systemd", "user.slice")),
    (f"/system.slice/libpod-conmon-{ID}.scope", Identity("systemd", f"libpod-conmon-{ID}.scope")),
    ("/plain/leaf", Identity("raw", "/plain/leaf")),
    (f"/custom-parent/{ID}", Identity("raw", f"/custom-parent/{ID}")),
    # A test's unique parent does not change what the shape below it says.
    (f"/cgwatch-test-1-ab/docker/{ID}", Identity("docker", ID)),
    # LXC 4 and later (seen with LXC 5.0.2 here), and LXC before 4.0: the name comes from the path.
    ("/lxc.payload.web", Identity("lxc", "web")),
    ("/lxc.payload.db.prod-1", Identity("lxc", "db.prod-1")),
    ("/lxc/web", Identity("lxc", "web")),
    (f"/lxc/{ID}", Identity("lxc", ID)),
    ("/cgwatch-test-1-ab/lxc.payload.web", Identity("lxc", "web")),
    # LXC's own cgroups, and what runs inside a container, are not the container.
    ("/lxc.monitor.web", Identity("raw", "/lxc.monitor.web")),
    ("/lxc.monitor.web.scope", Identity("raw", "/lxc.monitor.web.scope")),
    ("/lxc.pivot", Identity("raw", "/lxc.pivot")),
    ("/lxc", Identity("raw", "/lxc")),
    ("/lxc.payload.web/init.scope", Identity("systemd", "init.scope")),
    ("/lxc.payload.web/batch", Identity("raw", "/lxc.payload.web/batch")),
])
def test_classify(path, expected):
    assert classify(path) == expected


def test_only_runtime_containers_count_as_containers():
    assert classify(f"/docker/{ID}").is_container
    assert classify("/lxc.payload.web").is_container
    assert not classify("/lxc.monitor.web").is_container
    assert not classify("/system.slice/cron.service").is_container
    assert not classify("/plain").is_container
