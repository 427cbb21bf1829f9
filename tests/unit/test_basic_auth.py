"""Basic auth against bcrypt hashes: what gets in, what is cached, and what an unknown user costs."""

from __future__ import annotations

import base64

import bcrypt
import pytest

from cgwatch.server import basic_auth
from cgwatch.server.basic_auth import BasicAuth, parse_basic

HASH = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4))


def header(user: str | bytes, password: str | bytes) -> str:
    raw = (user if isinstance(user, bytes) else user.encode()) + b":" + (
        password if isinstance(password, bytes) else password.encode())
    return "Basic " + base64.b64encode(raw).decode()


@pytest.fixture
def auth():
    a = BasicAuth({"prometheus": HASH})
    yield a
    a.close()


@pytest.fixture
def bcrypt_calls(monkeypatch):
    calls = []
    real = basic_auth._checkpw

    def counting(password, hashed):
        calls.append(hashed)
        return real(password, hashed)
    monkeypatch.setattr(basic_auth, "_checkpw", counting)
    return calls


async def test_the_right_password_gets_in(auth):
    assert await auth.allows(header("prometheus", "s3cret"))


@pytest.mark.parametrize("value", [None, "", "Bearer abc", "Basic !!!",
                                   "Basic " + base64.b64encode(b"nocolon").decode()])
async def test_missing_or_malformed_credentials_do_not(auth, value):
    assert not await auth.allows(value)


async def test_a_wrong_password_does_not(auth):
    assert not await auth.allows(header("prometheus", "guess"))


async def test_a_verified_password_is_remembered_so_scrapes_skip_bcrypt(auth, bcrypt_calls):
    for _ in range(3):
        assert await auth.allows(header("prometheus", "s3cret"))
    assert len(bcrypt_calls) == 1


async def test_a_wrong_password_pays_bcrypt_every_time(auth, bcrypt_calls):
    for _ in range(2):
        assert not await auth.allows(header("prometheus", "guess"))
    assert len(bcrypt_calls) == 2


async def test_an_unknown_user_is_still_compared_against_a_real_hash(auth, bcrypt_calls):
    # Same work as a known user: the reply time does not tell which user names exist.
    assert not await auth.allows(header("nobody", "s3cret"))
    assert bcrypt_calls == [HASH]


async def test_a_changed_hash_invalidates_the_cached_password(auth):
    assert await auth.allows(header("prometheus", "s3cret"))
    auth.set_users({"prometheus": bcrypt.hashpw(b"new", bcrypt.gensalt(rounds=4))})
    assert not await auth.allows(header("prometheus", "s3cret"))
    assert await auth.allows(header("prometheus", "new"))


async def test_htpasswds_2y_hashes_work():
    a = BasicAuth({"u": HASH.replace(b"$2b$", b"$2y$")})
    try:
        assert await a.allows(header("u", "s3cret"))
    finally:
        a.close()


async def test_a_password_over_72_bytes_is_refused_not_an_error(auth):
    assert not await auth.allows(header("prometheus", "x" * 100))


async def test_a_user_name_that_is_not_utf8_is_refused(auth):
    assert not await auth.allows(header(b"\xff", "s3cret"))


def test_parse_basic_keeps_colons_in_the_password():
    assert parse_basic(header("u", "a:b")) == (b"u", b"a:b")
    assert parse_basic("basic " + base64.b64encode(b"u:p").decode()) == (b"u", b"p")  # the scheme is case-insensitive
