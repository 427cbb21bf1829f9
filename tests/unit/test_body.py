"""Which Accept-Encoding headers get the gzipped exposition (cgwatch/server/body.py)."""

import pytest

from cgwatch.server.body import accepts_gzip


@pytest.mark.parametrize("header, gzip", [
    ("gzip", True), ("gzip, deflate", True), ("x-gzip", True), ("GZIP ; q=0.8", True), ("identity, *;q=0.5", True),
    ("", False), ("deflate", False), ("gzip;q=0", False), ("*;q=0", False), ("gzip;q=0, *", False),
    ("gzip;q=bad", False), ("identity", False),
])
def test_accepts_gzip(header, gzip):
    assert accepts_gzip(header) is gzip
