"""Which Host names count as loopback (the DNS-rebinding check of cgwatch/server/origin.py)."""

import pytest

from cgwatch.server.origin import is_loopback_host, split_host


@pytest.mark.parametrize("header, host", [
    ("127.0.0.1:9339", "127.0.0.1"), ("localhost", "localhost"), ("[::1]:9339", "::1"), ("LOCALHOST:1", "localhost"),
    ("evil.example:9339", "evil.example"), ("user@127.0.0.1", None), ("127.0.0.1/x", None), ("", None), ("[::1", None),
])
def test_split_host(header, host):
    assert split_host(header) == host


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True), ("app.localhost", True),
    ("0.0.0.0", False), ("10.0.0.1", False), ("evil.example", False), ("localhost.evil.example", False),
    ("127.0.0.1.nip.io", False), ("::ffff:7f00:1", False),
])
def test_is_loopback_host(host, loopback):
    assert is_loopback_host(host) is loopback
