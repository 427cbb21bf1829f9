"""inotify(7): the event parser over real kernel bytes, and the descriptor against a real directory."""

from __future__ import annotations

import os

import pytest

from cgwatch.host.inotify import (IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_IGNORED, IN_ISDIR, IN_ONLYDIR, Event,
                                  Inotify, parse_events)

ID = "0123456789abcdef" * 4

# One read(2) of an inotify descriptor watching a v1 memory cgroup (IN_CREATE | IN_DELETE |
# IN_DELETE_SELF | IN_ONLYDIR), captured on this project's CI host (kernel 6.18) with
# os.read(Inotify().fileno(), 65536) after: mkdir <ID>, mkdir docker, rmdir docker, rmdir <ID>,
# rmdir of the watched cgroup itself. Names are NUL-padded to 16 bytes; the last rmdir sent
# nothing: kernfs gives no IN_DELETE_SELF or IN_IGNORED for a removed cgroup.
CGROUPFS_READ = bytes.fromhex(
    "01000000000100400000000050000000" + ID.encode().hex() + "00" * 16
    + "01000000000100400000000010000000" + b"docker".hex() + "00" * 10
    + "01000000000200400000000010000000" + b"docker".hex() + "00" * 10
    + "01000000000200400000000050000000" + ID.encode().hex() + "00" * 16)

# The same watch on a tmpfs directory that is removed: IN_DELETE_SELF, then IN_IGNORED, no names.
TMPFS_RMDIR_READ = bytes.fromhex("0200000000040000000000000000000002000000008000000000000000000000")


def test_events_of_one_read_are_parsed_in_order_with_their_names():
    assert parse_events(CGROUPFS_READ) == [
        Event(1, IN_CREATE | IN_ISDIR, 0, ID),
        Event(1, IN_CREATE | IN_ISDIR, 0, "docker"),
        Event(1, IN_DELETE | IN_ISDIR, 0, "docker"),
        Event(1, IN_DELETE | IN_ISDIR, 0, ID),
    ]


def test_events_about_the_watched_directory_itself_have_no_name():
    assert parse_events(TMPFS_RMDIR_READ) == [Event(2, IN_DELETE_SELF, 0, ""), Event(2, IN_IGNORED, 0, "")]


def test_an_empty_read_is_no_event():
    assert parse_events(b"") == []


@pytest.mark.parametrize("cut", [1, 15, 17, 31])
def test_a_truncated_event_is_an_error_not_a_wrong_name(cut):
    with pytest.raises(ValueError):
        parse_events(CGROUPFS_READ[:cut])


def test_a_directory_made_in_a_watched_directory_is_reported(tmp_path):
    with Inotify() as ino:
        wd = ino.add_watch(tmp_path, IN_CREATE | IN_ONLYDIR)
        assert ino.read() == []  # non-blocking: nothing queued yet
        (tmp_path / "docker").mkdir()
        (tmp_path / "a-file").write_text("")
        events = ino.read()
    assert [(e.wd, e.name, e.is_dir) for e in events] == [(wd, "docker", True), (wd, "a-file", False)]


def test_watching_a_missing_directory_says_why(tmp_path):
    with Inotify() as ino, pytest.raises(FileNotFoundError):
        ino.add_watch(tmp_path / "absent", IN_CREATE)


def test_only_dir_refuses_a_file(tmp_path):
    (tmp_path / "f").write_text("")
    with Inotify() as ino, pytest.raises(NotADirectoryError):
        ino.add_watch(tmp_path / "f", IN_CREATE | IN_ONLYDIR)


def test_close_releases_the_descriptor():
    ino = Inotify()
    fd = ino.fileno()
    ino.close()
    with pytest.raises(OSError):
        os.fstat(fd)
