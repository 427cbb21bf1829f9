"""Pure pieces of the Docker client: inspect JSON -> DockerContainer, Docker's times, the event stream decoder."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from cgwatch.runtimes.docker.client import DockerClient
from cgwatch.runtimes.docker.parsing import (
    DockerContainer,
    DockerEvent,
    parse_container,
    parse_docker_time,
    parse_event,
    parse_list_entry,
)
from cgwatch.runtimes.docker.stream import JsonStreamDecoder

CID = "6e8a5ee13cc4ef4045d5a8b7957e1129e3e9d9f87d34050e921b9816d008f2fd"
T0 = datetime(2024, 11, 28, 11, 40, 12, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize("text, expected", [
    ("2024-11-28T11:40:12Z", T0),
    ("2024-11-28T11:40:12.5Z", T0 + 0.5),
    ("2024-11-28T11:40:12.123456789Z", T0 + 0.123456789),      # Go's RFC3339Nano: 9 digits
    ("2024-11-28T11:40:12.000000001Z", T0 + 1e-9),
    ("2024-11-28T12:40:12.25+01:00", T0 + 0.25),                 # an offset instead of Z
    ("2024-11-28T06:10:12-05:30", T0),
    ("2024-11-28t11:40:12z", T0),
    ("0001-01-01T00:00:00Z", None),                              # Go's zero time: "never"
    ("", None),
    (None, None),
    (1732794012, 1732794012.0),                                  # the list endpoint's Created
    (0, None),
])
def test_parse_docker_time(text, expected):
    got = parse_docker_time(text)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("bad", ["yesterday", "2024-11-28", "2024-11-28T11:40:12", "2024-13-01T00:00:00Z",
                                 "2024-11-28T11:40:12.Z", True, [1]])
def test_parse_docker_time_rejects(bad):
    with pytest.raises(ValueError):
        parse_docker_time(bad)


def inspect_json(**over):
    """An abridged `docker inspect` of a running container (Docker 20.10 shape)."""
    data = {
        "Id": CID,
        "Created": "2024-11-28T11:40:11.796563400Z",
        "Path": "sleep", "Args": ["300"],
        "State": {"Status": "running", "Running": True, "Paused": False, "Pid": 21658,
                  "StartedAt": "2024-11-28T11:40:12.235842200Z", "FinishedAt": "0001-01-01T00:00:00Z"},
        "Image": "sha256:21271934c44c0d7bd6e2a27cb4e6c1c07d4b5c71fe2ea0b3f9e5d3b5c1c2f0aa",
        "Name": "/cgw-test-abc",
        "HostConfig": {"CgroupParent": "", "NanoCpus": 500000000, "Memory": 104857600},
        "Config": {"Image": "local/busybox", "Labels": {"team": "infra", "tier": "1"},
                   "Env": ["PATH=/usr/bin", "SECRET=hunter2"], "Cmd": ["sleep", "300"]},
    }
    for key, value in over.items():
        data[key] = value
    return data


def test_parse_running_container():
    c = parse_container(inspect_json())
    assert c == DockerContainer(id=CID, name="cgw-test-abc", image="local/busybox",
                                labels={"team": "infra", "tier": "1"},
                                created=pytest.approx(T0 - 0.2034366, abs=1e-6),
                                started_at=pytest.approx(T0 + 0.2358422, abs=1e-6),
                                pid=21658, running=True, cgroup_parent="")
    assert "SECRET=hunter2" not in json.dumps(dict(c.labels))  # labels only, never the environment


@pytest.mark.parametrize("over, field, expected", [
    # created, never started: zero StartedAt, Pid 0
    ({"State": {"Status": "created", "Running": False, "Pid": 0, "StartedAt": "0001-01-01T00:00:00Z"}},
     ("started_at", "pid", "running"), (None, None, False)),
    # exited: keeps its last StartedAt, no Pid
    ({"State": {"Status": "exited", "Running": False, "Pid": 0, "StartedAt": "2024-11-28T11:40:12Z"}},
     ("started_at", "pid", "running"), (T0, None, False)),
    ({"Config": {"Image": "local/busybox", "Labels": None}}, ("labels",), ({},)),
    ({"Config": None}, ("image", "labels"), ("sha256:21271934c44c0d7bd6e2a27cb4e6c1c07d4b5c71fe2ea0b3f9e5d3b5c1c2f0aa", {})),
    ({"HostConfig": {"CgroupParent": "/cgwatch-parent"}}, ("cgroup_parent",), ("/cgwatch-parent",)),
    ({"HostConfig": None}, ("cgroup_parent",), ("",)),
    ({"Name": "plain"}, ("name",), ("plain",)),
    ({"Created": "garbage"}, ("created",), (None,)),                  # logged, not fatal
    ({"State": None}, ("running", "pid", "started_at"), (False, None, None)),
])
def test_parse_container_variants(over, field, expected):
    c = parse_container(inspect_json(**over))
    assert tuple(getattr(c, f) for f in field) == expected


@pytest.mark.parametrize("bad", [{}, {"Id": ""}, {"Id": None}, [], "x"])
def test_parse_container_needs_an_id(bad):
    with pytest.raises(ValueError):
        parse_container(bad)


def test_parse_list_entry_fallback():
    c = parse_list_entry({"Id": CID, "Names": ["/web"], "Image": "local/busybox", "Created": 1732794012,
                          "Labels": {"a": "b"}, "State": "running", "HostConfig": {"NetworkMode": "default"}})
    assert (c.name, c.image, c.labels, c.created, c.running, c.started_at, c.pid) == \
        ("web", "local/busybox", {"a": "b"}, 1732794012.0, True, None, None)


START_EVENT = {"status": "start", "id": CID, "from": "local/busybox", "Type": "container", "Action": "start",
               "Actor": {"ID": CID, "Attributes": {"image": "local/busybox", "name": "web", "team": "infra"}},
               "scope": "local", "time": 1732794012, "timeNano": 1732794012235842200}


@pytest.mark.parametrize("obj, expected", [
    (START_EVENT, DockerEvent("start", CID, {"image": "local/busybox", "name": "web", "team": "infra"},
                              1732794012.2358422)),
    ({**START_EVENT, "Action": "exec_start: sh -c true", "timeNano": None},
     DockerEvent("exec_start: sh -c true", CID, START_EVENT["Actor"]["Attributes"], 1732794012.0)),
    ({"status": "die", "id": CID, "time": 5}, DockerEvent("die", CID, {}, 5.0)),       # pre-1.22 shape
    ({**START_EVENT, "Type": "network", "Action": "connect"}, None),
    ({**START_EVENT, "Actor": {"ID": CID, "Attributes": {"exitCode": 0}}},
     DockerEvent("start", CID, {"exitCode": "0"}, 1732794012.2358422)),
])
def test_parse_event(obj, expected):
    ev = parse_event(obj)
    if expected is None:
        assert ev is None
    else:
        assert (ev.action, ev.id, dict(ev.attributes)) == (expected.action, expected.id, dict(expected.attributes))
        assert ev.time == pytest.approx(expected.time, abs=1e-6)


@pytest.mark.parametrize("bad", [[1, 2], "start", {"Type": "container", "Action": "start"}, {"id": CID}])
def test_parse_event_rejects(bad):
    with pytest.raises(ValueError):
        parse_event(bad)


def _stream(*objs):
    return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


A = {"Action": "create", "id": "a", "Actor": {"Attributes": {"name": "caf\u00e9"}}}
B = {"Action": "start", "id": "b"}
C = {"Action": "destroy", "id": "c"}


def cut(data: bytes, *at: int) -> list[bytes]:
    bounds = [0, *at, len(data)]
    return [data[i:j] for i, j in zip(bounds, bounds[1:])]


WHOLE = json.dumps(A, ensure_ascii=False).encode() + b"\n" + _stream(B, C)


@pytest.mark.parametrize("chunks, expected", [
    ([WHOLE], [A, B, C]),                                          # all in one chunk
    (cut(WHOLE, 10), [A, B, C]),                                   # mid-object
    (cut(WHOLE, WHOLE.index(b"\xc3") + 1), [A, B, C]),             # inside a UTF-8 sequence
    (cut(WHOLE, WHOLE.index(b"\n")), [A, B, C]),                   # just before a newline
    (cut(WHOLE, WHOLE.index(b"\n") + 1), [A, B, C]),               # just after a newline
    ([bytes([b]) for b in WHOLE], [A, B, C]),                      # one byte at a time
    ([_stream(A)[:-1], b"", b"\n"], [A]),                          # empty chunk in between
    ([json.dumps(A).encode() + json.dumps(B).encode() + b"\n"], [A, B]),  # two objects on one line
    ([b"\n\r\n  \n" + _stream(B)], [B]),                           # blank lines
])
def test_decoder_reassembles_split_objects(chunks, expected):
    dec = JsonStreamDecoder()
    got = []
    for chunk in chunks:
        got.extend(dec.feed(chunk))
    got.extend(dec.flush())
    assert got == expected
    assert dec.errors == 0


def test_decoder_returns_objects_as_soon_as_their_line_ends():
    dec = JsonStreamDecoder()
    data = _stream(A, B)
    first_nl = data.index(b"\n")
    assert dec.feed(data[:first_nl]) == []
    assert dec.feed(data[first_nl:first_nl + 1]) == [A]
    assert dec.feed(data[first_nl + 1:]) == [B]


def test_decoder_flush_takes_a_last_line_without_newline():
    dec = JsonStreamDecoder()
    assert dec.feed(_stream(A) + json.dumps(B).encode()) == [A]
    assert dec.flush() == [B]
    assert dec.flush() == []


@pytest.mark.parametrize("garbage", [b"{not json}\n", b"\xff\xfe{}\n", b'{"Action": "st\n', b"]\n"])
def test_decoder_skips_a_bad_line_and_goes_on(garbage):
    seen = []
    dec = JsonStreamDecoder(on_error=lambda line, exc: seen.append((line, type(exc))))
    got = dec.feed(_stream(A) + garbage + _stream(B))
    assert got == [A, B]
    assert dec.errors == 1 and len(seen) == 1 and seen[0][0] == garbage[:-1]
    assert issubclass(seen[0][1], ValueError)


def test_decoder_drops_an_overlong_line_and_resyncs():
    dec = JsonStreamDecoder(max_line=64)
    got = dec.feed(b'{"x": "' + b"y" * 100)
    got += dec.feed(b"y" * 100 + b'"}\n' + _stream(B))
    assert got == [B]
    assert dec.errors == 1


@pytest.mark.parametrize("host", ["unix:///var/run/docker.sock", "/run/docker.sock", "tcp://127.0.0.1:2375",
                                  "http://docker.internal:2375", "https://docker.internal:2376"])
def test_client_accepts_host_forms(host):
    DockerClient(host)  # no connection is made before the first call


@pytest.mark.parametrize("host", ["", "unix://", "tcp://", "ssh://user@host", "npipe:////./pipe/docker_engine"])
def test_client_rejects_other_hosts(host):
    with pytest.raises(ValueError):
        DockerClient(host)
