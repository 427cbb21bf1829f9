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
])
def test_classify(path, expected):
    assert classify(path) == expected


def test_only_runtime_containers_count_as_containers():
    assert classify(f"/docker/{ID}").is_container
    assert not classify("/system.slice/cron.service").is_container
    assert not classify("/plain").is_container
