"""HTTP authentication against a real aiohttp server on 127.0.0.1, with real clients.

Clients: aiohttp (BasicAuth, DigestAuthMiddleware: SHA-256), requests (HTTPDigestAuth: MD5),
httpx (DigestAuth: SHA-256) and hand-built Digest headers for the edge cases (replay, stale
nonce, uri mismatch). Time is injected (:class:`FakeClock`): nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import httpx
import pytest
import requests
from aiohttp import DigestAuthMiddleware, web
from aiohttp.test_utils import TestServer
from requests.auth import HTTPDigestAuth

from camio.api.auth import (
    LOCAL_USER,
    NS_PER_S,
    Authenticated,
    Authenticator,
    AuthHeaderError,
    BasicCredentials,
    BearerCredentials,
    DigestCredentials,
    FailureThrottle,
    NcResult,
    NonceCountTracker,
    NonceManager,
    NonceStatus,
    Throttled,
    Unauthorized,
    auth_middleware,
    client_key,
    digest_response,
    is_loopback,
    parse_auth_params,
    parse_authorization,
)
from camio.store.secrets import SecretBox, random_token
from camio.store.users import Role, UserStore

REALM = "camio@test"
PW = {"alice": "alice-password", "oscar": "oscar-password", "victor": "victor-password"}
LOCAL_TOKEN = random_token(32)
WHOAMI = "/api/whoami"
OPERATE = "/api/outputs/1/activate"


class FakeClock:
    """Monotonic nanoseconds that only move when the test says so."""

    def __init__(self) -> None:
        self.now = 1_000 * NS_PER_S

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * NS_PER_S)


@dataclass
class Events:
    items: list[tuple[str, dict[str, object]]] = field(default_factory=list)

    def __call__(self, kind: str, data: dict[str, object]) -> None:
        self.items.append((kind, data))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.items]

    def last_reason(self) -> object:
        return self.items[-1][1]["reason"]


@pytest.fixture
def user_conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(tmp_path / "auth.db")
    yield connection
    connection.close()


@pytest.fixture
def empty_users(user_conn: sqlite3.Connection, tmp_path: Path) -> UserStore:
    return UserStore(user_conn, SecretBox(tmp_path / "data"))


@pytest.fixture
def users(empty_users: UserStore) -> UserStore:
    empty_users.add("alice", PW["alice"], Role.ADMIN)
    empty_users.add("oscar", PW["oscar"], Role.OPERATOR)
    empty_users.add("victor", PW["victor"], Role.VIEWER)
    return empty_users


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def auth(users: UserStore, clock: FakeClock, events: Events) -> Authenticator:
    return Authenticator(users, REALM, now_ns=clock, local_token=LOCAL_TOKEN, on_event=events)


def build_app(authenticator: Authenticator) -> web.Application:
    from camio.api.auth import require_role

    async def whoami(request: web.Request) -> web.Response:
        user = require_role(request, Role.VIEWER)
        return web.json_response({"name": user.name, "role": user.role.value})

    async def operate(request: web.Request) -> web.Response:
        user = require_role(request, Role.OPERATOR)
        return web.json_response({"activated": True, "by": user.name})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def public_but_guarded(request: web.Request) -> web.Response:
        require_role(request, Role.VIEWER)
        return web.json_response({})

    app = web.Application(
        middlewares=[
            auth_middleware(
                authenticator, public_paths=frozenset({"/api/health", "/api/misconfigured"})
            )
        ]
    )
    app.router.add_get(WHOAMI, whoami)
    app.router.add_post(OPERATE, operate)
    app.router.add_get("/api/health", health)
    app.router.add_get("/api/misconfigured", public_but_guarded)
    return app


async def start(authenticator: Authenticator) -> TestServer:
    server = TestServer(build_app(authenticator), host="127.0.0.1", port=0)
    await server.start_server()
    return server


@pytest.fixture
async def server(auth: Authenticator) -> AsyncIterator[TestServer]:
    srv = await start(auth)
    yield srv
    await srv.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def fetch(
    session: aiohttp.ClientSession,
    server: TestServer,
    path: str = WHOAMI,
    *,
    method: str = "GET",
    authorization: str | None = None,
) -> tuple[int, dict[str, object], aiohttp.ClientResponse]:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with session.request(method, server.make_url(path), headers=headers) as resp:
        body = await resp.json(content_type=None)
        return resp.status, body, resp


# -- hand-built Digest (independent of camio's own digest_response) ------------------------

_PARAM_RE = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]+))')


def challenge_params(resp: aiohttp.ClientResponse, algorithm: str) -> dict[str, str]:
    for value in resp.headers.getall("WWW-Authenticate"):
        if value.startswith("Digest ") and f"algorithm={algorithm}," in value:
            return {m[1]: m[2] or m[3] for m in _PARAM_RE.finditer(value[len("Digest ") :])}
    raise AssertionError(f"no {algorithm} challenge")


def hand_digest(
    chal: dict[str, str],
    *,
    user: str = "alice",
    password: str | None = None,
    method: str = "GET",
    uri: str = WHOAMI,
    nc: int = 1,
    cnonce: str = "0a4f113b",
    algorithm: str = "SHA-256",
    realm: str | None = None,
) -> str:
    hash_name = "md5" if algorithm.upper().startswith("MD5") else "sha256"

    def h(text: str) -> str:
        return hashlib.new(hash_name, text.encode()).hexdigest()

    password = PW[user] if password is None else password
    realm = chal["realm"] if realm is None else realm
    ha1 = h(f"{user}:{realm}:{password}")
    if algorithm.upper().endswith("-SESS"):
        ha1 = h(f"{ha1}:{chal['nonce']}:{cnonce}")
    ha2 = h(f"{method}:{uri}")
    response = h(f"{ha1}:{chal['nonce']}:{nc:08x}:{cnonce}:auth:{ha2}")
    return (
        f'Digest username="{user}", realm="{realm}", nonce="{chal["nonce"]}", uri="{uri}", '
        f'algorithm={algorithm}, response="{response}", qop=auth, nc={nc:08x}, '
        f'cnonce="{cnonce}", opaque="{chal["opaque"]}"'
    )


async def get_challenge(
    session: aiohttp.ClientSession, server: TestServer, algorithm: str = "SHA-256"
) -> dict[str, str]:
    status, _, resp = await fetch(session, server)
    assert status == 401
    return challenge_params(resp, algorithm)


# =========================================================================================
# Real server, real clients
# =========================================================================================


async def test_no_default_account(empty_users: UserStore, clock: FakeClock) -> None:
    authenticator = Authenticator(empty_users, REALM, now_ns=clock)
    server = await start(authenticator)
    try:
        async with aiohttp.ClientSession() as session:
            for user, password in [("admin", "admin"), ("root", "root"), ("admin", "")]:
                status, body, _ = await fetch(session, server, authorization=basic(user, password))
                assert status == 401
                assert body["error"] == "unauthorized"
                clock.advance(61)  # stay clear of the throttle; this test is about accounts
        async with (
            aiohttp.ClientSession(middlewares=(DigestAuthMiddleware("admin", "admin"),)) as session,
            session.get(server.make_url(WHOAMI)) as resp,
        ):
            assert resp.status == 401
        async with aiohttp.ClientSession() as session:
            status, _, _ = await fetch(session, server, authorization="Bearer " + LOCAL_TOKEN)
            assert status == 401, "no local token configured, no way in"
    finally:
        await server.close()


async def test_challenge_format(server: TestServer, session: aiohttp.ClientSession) -> None:
    status, body, resp = await fetch(session, server)
    assert status == 401
    assert body == {"error": "unauthorized", "message": "authentication required"}
    assert resp.headers["Content-Type"].startswith("application/json")
    challenges = resp.headers.getall("WWW-Authenticate")
    assert len(challenges) == 3
    sha, md5, basic_challenge = challenges
    assert sha.startswith(f'Digest realm="{REALM}", qop="auth", algorithm=SHA-256, nonce="')
    assert md5.startswith(f'Digest realm="{REALM}", qop="auth", algorithm=MD5, nonce="')
    assert 'opaque="' in sha and 'opaque="' in md5
    assert "stale" not in sha
    assert basic_challenge == f'Basic realm="{REALM}"'
    assert challenge_params(resp, "SHA-256")["nonce"] == challenge_params(resp, "MD5")["nonce"]


async def test_public_path_needs_no_credentials(
    server: TestServer, session: aiohttp.ClientSession
) -> None:
    status, body, _ = await fetch(session, server, "/api/health")
    assert (status, body) == (200, {"ok": True})
    # A handler on a public path that asks for a role fails closed.
    status, body, _ = await fetch(session, server, "/api/misconfigured")
    assert status == 403 and body["error"] == "forbidden"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # aiohttp 3.14 deprecates BasicAuth
async def test_basic_right_wrong_unknown(
    server: TestServer, session: aiohttp.ClientSession, events: Events
) -> None:
    async with session.get(
        server.make_url(WHOAMI), auth=aiohttp.BasicAuth("alice", PW["alice"])
    ) as resp:
        assert resp.status == 200
        assert await resp.json() == {"name": "alice", "role": "admin"}
    async with session.get(
        server.make_url(WHOAMI), auth=aiohttp.BasicAuth("alice", "wrong-password")
    ) as resp:
        assert resp.status == 401
        assert (await resp.json())["message"] == "invalid credentials"
    async with session.get(
        server.make_url(WHOAMI), auth=aiohttp.BasicAuth("mallory", PW["alice"])
    ) as resp:
        assert resp.status == 401
        assert (await resp.json())["message"] == "invalid credentials", "same answer"
    assert events.kinds() == ["auth.failure", "auth.failure"]
    assert [d["user"] for _, d in events.items] == ["alice", "mallory"]
    assert all(d["remote"] == "127.0.0.1" and d["scheme"] == "basic" for _, d in events.items)


async def test_aiohttp_digest_sha256(server: TestServer) -> None:
    middleware = DigestAuthMiddleware("oscar", PW["oscar"])
    async with aiohttp.ClientSession(middlewares=(middleware,)) as session:
        for _ in range(5):  # preemptive: the same nonce with nc 1, 2, 3, ...
            async with session.post(server.make_url(OPERATE)) as resp:
                assert resp.status == 200
                assert await resp.json() == {"activated": True, "by": "oscar"}
                assert "algorithm=SHA-256" in resp.request_info.headers["Authorization"]
        async with session.get(server.make_url(WHOAMI + "?verbose=1&x=%2F")) as resp:
            assert resp.status == 200
    async with (
        aiohttp.ClientSession(
            middlewares=(DigestAuthMiddleware("oscar", "wrong-password"),)
        ) as session,
        session.get(server.make_url(WHOAMI)) as resp,
    ):
        assert resp.status == 401


def _requests_get(url: str, user: str, password: str) -> requests.Response:
    return requests.get(url, auth=HTTPDigestAuth(user, password), timeout=10)


async def test_requests_digest_md5(server: TestServer) -> None:
    url = str(server.make_url(WHOAMI + "?a=1"))
    resp = await asyncio.to_thread(_requests_get, url, "victor", PW["victor"])
    assert resp.status_code == 200
    assert resp.json() == {"name": "victor", "role": "viewer"}
    # requests folds the WWW-Authenticate headers into one and ends up with the MD5 one.
    assert 'algorithm="MD5"' in resp.request.headers["Authorization"]
    resp = await asyncio.to_thread(_requests_get, url, "victor", "wrong-password")
    assert resp.status_code == 401


async def test_httpx_digest_sha256(server: TestServer) -> None:
    async with httpx.AsyncClient(auth=httpx.DigestAuth("alice", PW["alice"])) as client:
        resp = await client.get(str(server.make_url(WHOAMI)))
        assert resp.status_code == 200
        assert resp.json() == {"name": "alice", "role": "admin"}
        assert "algorithm=SHA-256" in resp.request.headers["Authorization"]
    async with httpx.AsyncClient(auth=httpx.DigestAuth("alice", "wrong-password")) as client:
        resp = await client.get(str(server.make_url(WHOAMI)))
        assert resp.status_code == 401


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5", "MD5-sess", "SHA-256-sess"])
async def test_hand_digest_all_algorithms(
    server: TestServer, session: aiohttp.ClientSession, algorithm: str
) -> None:
    chal = await get_challenge(session, server, "MD5" if algorithm.startswith("MD5") else "SHA-256")
    status, body, _ = await fetch(
        session, server, authorization=hand_digest(chal, algorithm=algorithm)
    )
    assert (status, body) == (200, {"name": "alice", "role": "admin"})


async def test_roles(server: TestServer, session: aiohttp.ClientSession) -> None:
    status, body, _ = await fetch(
        session, server, OPERATE, method="POST", authorization=basic("victor", PW["victor"])
    )
    assert status == 403
    assert body == {"error": "forbidden", "message": "this operation requires the operator role"}
    for user in ("oscar", "alice"):
        status, body, _ = await fetch(
            session, server, OPERATE, method="POST", authorization=basic(user, PW[user])
        )
        assert (status, body) == (200, {"activated": True, "by": user})
    status, _, _ = await fetch(session, server, authorization=basic("victor", PW["victor"]))
    assert status == 200


async def test_digest_replay_refused(
    server: TestServer, session: aiohttp.ClientSession, events: Events
) -> None:
    chal = await get_challenge(session, server)
    header = hand_digest(chal, nc=1)
    assert (await fetch(session, server, authorization=header))[0] == 200
    status, body, _ = await fetch(session, server, authorization=header)
    assert status == 401 and body["error"] == "unauthorized"
    assert events.last_reason() == "nonce_count_replay"
    # Out-of-order counts are fine (concurrent requests), each one once.
    assert (await fetch(session, server, authorization=hand_digest(chal, nc=3)))[0] == 200
    assert (await fetch(session, server, authorization=hand_digest(chal, nc=2)))[0] == 200
    assert (await fetch(session, server, authorization=hand_digest(chal, nc=2)))[0] == 401
    assert (await fetch(session, server, authorization=hand_digest(chal, nc=4)))[0] == 200


async def test_stale_nonce(
    server: TestServer, session: aiohttp.ClientSession, clock: FakeClock, auth: Authenticator
) -> None:
    chal = await get_challenge(session, server)
    clock.advance(299)
    assert (await fetch(session, server, authorization=hand_digest(chal, nc=1)))[0] == 200
    clock.advance(2)  # 301 s old now
    for nc in range(2, 12):  # many stale answers must not trip the throttle
        status, body, resp = await fetch(session, server, authorization=hand_digest(chal, nc=nc))
        assert status == 401
        assert body["message"] == "nonce expired"
        digest_challenges = [
            v for v in resp.headers.getall("WWW-Authenticate") if v.startswith("Digest")
        ]
        assert len(digest_challenges) == 2
        assert all(v.endswith(", stale=true") for v in digest_challenges)
    assert auth.throttle.retry_after_ns(client_key("127.0.0.1")) == 0
    # The fresh nonce of the stale answer works.
    fresh = challenge_params(resp, "SHA-256")
    assert fresh["nonce"] != chal["nonce"]
    assert (await fetch(session, server, authorization=hand_digest(fresh)))[0] == 200
    # An expired nonce with the wrong password is just a failure: no stale hint.
    status, _, resp = await fetch(
        session, server, authorization=hand_digest(chal, nc=50, password="not-the-password")
    )
    assert status == 401
    assert not any("stale" in v for v in resp.headers.getall("WWW-Authenticate"))


async def test_digest_uri_mismatch(
    server: TestServer, session: aiohttp.ClientSession, events: Events
) -> None:
    chal = await get_challenge(session, server)
    for nc, uri in enumerate(["/api/health", WHOAMI + "?x=1", WHOAMI + "/"], start=1):
        header = hand_digest(chal, uri=uri, nc=nc)
        status, _, _ = await fetch(session, server, authorization=header)
        assert status == 401
        assert events.last_reason() == "uri_mismatch"
    # With the query it must match exactly too.
    header = hand_digest(chal, uri=WHOAMI + "?x=1", nc=9)
    assert (await fetch(session, server, WHOAMI + "?x=1", authorization=header))[0] == 200
    # Absolute-form uri (some old clients) is reduced to its path and query.
    absolute = str(server.make_url(WHOAMI))
    header = hand_digest(chal, uri=absolute, nc=10)
    assert (await fetch(session, server, authorization=header))[0] == 200


async def test_digest_method_realm_and_nonce_checked(
    server: TestServer, session: aiohttp.ClientSession, events: Events
) -> None:
    chal = await get_challenge(session, server)
    header = hand_digest(chal, method="POST")  # computed for POST, sent as GET
    assert (await fetch(session, server, authorization=header))[0] == 401
    assert events.last_reason() == "bad_credentials"
    header = hand_digest(chal, realm="other-realm")
    assert (await fetch(session, server, authorization=header))[0] == 401
    assert events.last_reason() == "realm_mismatch"
    forged = dict(chal, nonce=chal["nonce"][:-1] + ("0" if chal["nonce"][-1] != "0" else "1"))
    assert (await fetch(session, server, authorization=hand_digest(forged)))[0] == 401
    assert events.last_reason() == "bad_nonce"
    header = hand_digest(chal, user="mallory", password="whatever-pass")
    assert (await fetch(session, server, authorization=header))[0] == 401
    assert events.last_reason() == "bad_credentials"


async def test_throttling_and_recovery(
    server: TestServer, session: aiohttp.ClientSession, clock: FakeClock, events: Events
) -> None:
    right = basic("alice", PW["alice"])
    wrong = basic("alice", "wrong-password")
    for i in range(5):
        if i:
            clock.advance(10)  # 5 failures within 60 s
        assert (await fetch(session, server, authorization=wrong))[0] == 401
    status, body, resp = await fetch(session, server, authorization=right)
    assert status == 429, "locked out: even the right password is not checked"
    assert body["error"] == "too_many_requests"
    assert resp.headers["Retry-After"] == "30"
    assert events.kinds().count("auth.throttled") == 1
    assert events.items[-1][1]["retry_after_s"] == 30
    assert "WWW-Authenticate" not in resp.headers
    # Public paths are not locked.
    assert (await fetch(session, server, "/api/health"))[0] == 200

    clock.advance(20)
    status, _, resp = await fetch(session, server, authorization=right)
    assert status == 429 and resp.headers["Retry-After"] == "10"

    clock.advance(10)  # the back-off window is over
    # A second round of failures is locked out for longer (30 s -> 60 s).
    for _ in range(5):
        assert (await fetch(session, server, authorization=wrong))[0] == 401
    status, _, resp = await fetch(session, server, authorization=right)
    assert status == 429 and resp.headers["Retry-After"] == "60"
    clock.advance(60)
    assert (await fetch(session, server, authorization=right))[0] == 200

    # Never a secret in the audit trail.
    dumped = json.dumps([[k, d] for k, d in events.items], default=str)
    assert PW["alice"] not in dumped
    assert "wrong-password" not in dumped
    assert wrong.split()[1] not in dumped


async def test_failures_spread_over_time_do_not_lock(
    server: TestServer, session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    wrong = basic("alice", "wrong-password")
    for _ in range(12):
        assert (await fetch(session, server, authorization=wrong))[0] == 401
        clock.advance(16)  # never 5 within 60 s
    assert (await fetch(session, server, authorization=basic("alice", PW["alice"])))[0] == 200


async def test_throttle_is_per_client(server: TestServer, clock: FakeClock) -> None:
    wrong = basic("alice", "wrong-password")
    right = basic("alice", PW["alice"])
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession() as here, aiohttp.ClientSession(connector=connector) as there:
        for _ in range(5):
            assert (await fetch(here, server, authorization=wrong))[0] == 401
        assert (await fetch(here, server, authorization=right))[0] == 429
        status, _, _ = await fetch(there, server, authorization=right)
        assert status == 200, "another address is not affected"
        assert (await fetch(here, server, authorization=right))[0] == 429, "nor reset"


async def test_bearer_local_token(server: TestServer, session: aiohttp.ClientSession) -> None:
    status, body, _ = await fetch(session, server, authorization="Bearer " + LOCAL_TOKEN)
    assert (status, body) == (200, {"name": LOCAL_USER.name, "role": "admin"})
    status, _, _ = await fetch(
        session, server, OPERATE, method="POST", authorization="Bearer " + LOCAL_TOKEN
    )
    assert status == 200
    status, _, _ = await fetch(session, server, authorization="Bearer " + random_token(32))
    assert status == 401


async def test_basic_can_be_disabled(users: UserStore, clock: FakeClock) -> None:
    authenticator = Authenticator(users, REALM, now_ns=clock, allow_basic=False)
    server = await start(authenticator)
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(10):  # a Basic client is challenged, not treated as a guesser
                status, _, resp = await fetch(
                    session, server, authorization=basic("alice", PW["alice"])
                )
                assert status == 401
            challenges = resp.headers.getall("WWW-Authenticate")
            assert [c.split()[0] for c in challenges] == ["Digest", "Digest"]
            chal = challenge_params(resp, "SHA-256")
            assert (await fetch(session, server, authorization=hand_digest(chal)))[0] == 200
    finally:
        await server.close()


_B64_NO_COLON = base64.b64encode(b"alicewithoutcolon").decode()
_B64_NOT_UTF8 = base64.b64encode(b"\xff\xfe:\xff").decode()


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!!garbage!!!!",
        "Basic",
        "Basic ",
        "Basic YWxpY2U6cGFzc3dvcmQ",  # missing padding
        "Basic " + _B64_NO_COLON,
        "Basic " + _B64_NOT_UTF8,
        "Basic " + base64.b64encode(b":password").decode(),
        "Digest",
        'Digest username="alice"',
        'Digest username="alice", realm="camio@test", nonce="00", uri="/api/whoami"',
        'Digest username="alice", realm="unterminated',
        'Digest username="alice", username="bob"',
        "Digest ,,,=,,",
        'Digest username="alice" realm="x"',
        'Digest username="alice", realm="camio@test", nonce="x", uri="/api/whoami", '
        'response="zz", qop=auth, nc=00000001, cnonce="c"',
        'Digest username="alice", realm="camio@test", nonce="x", uri="/api/whoami", '
        'response="' + "0" * 64 + '", qop=auth-int, nc=00000001, cnonce="c"',
        'Digest username="alice", realm="camio@test", nonce="x", uri="/api/whoami", '
        'response="' + "0" * 64 + '", qop=auth, nc=1, cnonce="c", algorithm=SHA-256',
        'Digest username="alice", realm="camio@test", nonce="x", uri="/api/whoami", '
        'response="' + "0" * 64 + '", qop=auth, nc=00000001, cnonce="c", algorithm=SHA-512',
        "Bearer",
        "Bearer two words",
        "Negotiate YIIFyQYGKwYBBQUCoIIFvTCCBbmgMDAuBgkqhkiC9xIBAgIGCSqGSIb3EgECAgYKKwYBBAGC",
        "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==",
        "Digest " + "a" * 6000,
        "Basic " + "QUFB" * 1500,
        'Digest username="' + "x" * 5000 + '"',
    ],
)
async def test_malformed_headers_are_401(
    server: TestServer, session: aiohttp.ClientSession, clock: FakeClock, header: str
) -> None:
    status, body, resp = await fetch(session, server, authorization=header)
    assert status == 401
    assert body["error"] == "unauthorized"
    assert len(resp.headers.getall("WWW-Authenticate")) == 3


@pytest.mark.parametrize(
    "raw_value",
    [b"\x01\x02", b"Basic \xff\xfe", b'Digest username="\xc3\xa9"', "Basic é".encode()],
)
async def test_raw_bytes_in_header_never_500(server: TestServer, raw_value: bytes) -> None:
    """Bytes a well-behaved client refuses to send, over a plain socket."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(
            b"GET /api/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Authorization: " + raw_value + b"\r\n\r\n"
        )
        await writer.drain()
        status_line = await reader.readline()
    finally:
        writer.close()
    status = int(status_line.split()[1])
    assert status in (400, 401)


async def test_oversized_header_is_refused_by_the_http_parser(
    server: TestServer, session: aiohttp.ClientSession
) -> None:
    """Beyond aiohttp's header limit (8190 bytes) the HTTP parser answers 400 itself."""
    async with session.get(
        server.make_url(WHOAMI), headers={"Authorization": "Basic " + "A" * 20_000}
    ) as resp:
        assert resp.status == 400


async def test_two_authorization_headers_refused(
    server: TestServer, session: aiohttp.ClientSession
) -> None:
    headers = [
        ("Authorization", basic("alice", PW["alice"])),
        ("Authorization", basic("victor", PW["victor"])),
    ]
    async with session.get(server.make_url(WHOAMI), headers=headers) as resp:
        assert resp.status == 401


async def test_audit_hook_failure_does_not_open_the_door(
    users: UserStore, clock: FakeClock
) -> None:
    def broken(kind: str, data: dict[str, object]) -> None:
        raise RuntimeError("audit sink down")

    server = await start(Authenticator(users, REALM, now_ns=clock, on_event=broken))
    try:
        async with aiohttp.ClientSession() as session:
            status, _, _ = await fetch(session, server, authorization=basic("alice", "nope-nope"))
            assert status == 401
    finally:
        await server.close()


# =========================================================================================
# The pure core
# =========================================================================================


def test_digest_response_rfc7616_vectors() -> None:
    """RFC 7616 section 3.9.1."""
    common = dict(
        username="Mufasa",
        realm="http-auth@example.org",
        password="Circle of Life",
        method="GET",
        uri="/dir/index.html",
        nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        nc="00000001",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    assert digest_response(algorithm="MD5", **common) == "8ca523f5e9506fed4657c9700eebdbec"
    assert (
        digest_response(algorithm="SHA-256", **common)
        == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    )


def test_parse_auth_params() -> None:
    params = parse_auth_params(
        'Username="a\\"b", realm = "x, y" ,, nc=00000001,qop=auth, uri="/p?q=1,2"'
    )
    assert params == {
        "username": 'a"b',
        "realm": "x, y",
        "nc": "00000001",
        "qop": "auth",
        "uri": "/p?q=1,2",
    }
    assert parse_auth_params("") == {}
    for bad in ['a="x', "a", "a=", 'a="x" b="y"', "a=1, A=2", '="x"', 'a="x\\']:
        with pytest.raises(AuthHeaderError):
            parse_auth_params(bad)


def test_parse_authorization() -> None:
    assert parse_authorization(basic("alice", "p:w")) == BasicCredentials("alice", "p:w")
    assert parse_authorization("bearer abc.DEF-123_~+/=") == BearerCredentials("abc.DEF-123_~+/=")
    creds = parse_authorization(
        'DIGEST username="alice", realm="r", nonce="n", uri="/", response="'
        + "A" * 32
        + '", qop="auth", nc=0000000a, cnonce="c", algorithm="md5-sess"'
    )
    assert isinstance(creds, DigestCredentials)
    assert (creds.algorithm, creds.nc, creds.response, creds.opaque) == (
        "MD5-SESS",
        10,
        "a" * 32,
        None,
    )
    # Passwords and tokens stay out of reprs (and so out of logs and tracebacks).
    assert "s3cret" not in repr(parse_authorization(basic("alice", "s3cret")))
    assert "tok3n" not in repr(parse_authorization("Bearer tok3n"))
    with pytest.raises(AuthHeaderError) as excinfo:
        parse_authorization("Digest secretword")
    assert "secretword" not in str(excinfo.value)


def test_nonce_manager() -> None:
    clock = FakeClock()
    nonces = NonceManager(now_ns=clock, lifetime_ns=300 * NS_PER_S)
    nonce = nonces.issue()
    assert nonces.check(nonce) == (NonceStatus.VALID, clock.now)
    clock.advance(300)
    assert nonces.check(nonce)[0] is NonceStatus.VALID
    clock.advance(1)
    assert nonces.check(nonce)[0] is NonceStatus.STALE
    other = NonceManager(now_ns=clock, lifetime_ns=300 * NS_PER_S)
    assert other.check(nonce)[0] is NonceStatus.INVALID, "a restart invalidates nonces"
    for bad in ["", "zz", nonce.upper() + "0", "0" * 48, nonce[:16] + "f" * 32]:
        assert nonces.check(bad)[0] is NonceStatus.INVALID
    # Moving the timestamp breaks the MAC; the uptime is not readable from the nonce.
    forged = f"{(int(nonce[:16], 16) + NS_PER_S) % 2**64:016x}" + nonce[16:]
    assert nonces.check(forged)[0] is NonceStatus.INVALID
    assert int(nonce[:16], 16) != clock.now - 301 * NS_PER_S


def test_nonce_count_tracker_window_and_bound() -> None:
    tracker = NonceCountTracker(lifetime_ns=300 * NS_PER_S, max_nonces=3, window=8)
    now = 1_000
    assert tracker.use("n1", 10, 1, now) is NcResult.ACCEPTED
    assert tracker.use("n1", 10, 1, now) is NcResult.REPLAY
    assert tracker.use("n1", 10, 20, now) is NcResult.ACCEPTED
    assert tracker.use("n1", 10, 13, now) is NcResult.ACCEPTED
    assert tracker.use("n1", 10, 13, now) is NcResult.REPLAY
    assert tracker.use("n1", 10, 12, now) is NcResult.REPLAY, "too far behind the window"
    for i in range(2, 10):
        assert tracker.use(f"n{i}", 10 + i, 1, now) is NcResult.ACCEPTED
    assert len(tracker) == 3
    # n1 was evicted: it must not come back as fresh (its nc 1 would be replayable).
    assert tracker.use("n1", 10, 1, now) is NcResult.FORGOTTEN
    assert tracker.use("n9", 19, 1, now) is NcResult.REPLAY
    assert tracker.use("n10", 100, 1, now) is NcResult.ACCEPTED
    # Expired nonces are dropped without raising the eviction floor.
    later = 100 + 301 * NS_PER_S
    assert tracker.use("n11", later, 1, later) is NcResult.ACCEPTED
    assert len(tracker) == 1


def test_failure_throttle_backoff_cap_and_bound() -> None:
    clock = FakeClock()
    throttle = FailureThrottle(
        now_ns=clock, base_backoff_ns=30 * NS_PER_S, max_backoff_ns=100 * NS_PER_S, max_clients=50
    )
    backoffs = []
    for _ in range(4):
        results = [throttle.record_failure("a") for _ in range(5)]
        assert results[:4] == [0, 0, 0, 0]
        backoffs.append(results[4] // NS_PER_S)
        assert throttle.retry_after_ns("a") == results[4]
        clock.advance(results[4] / NS_PER_S)
        assert throttle.retry_after_ns("a") == 0
    assert backoffs == [30, 60, 100, 100]
    # After a quiet period as long as the cap, the growth is forgotten.
    clock.advance(101)
    assert [throttle.record_failure("a") for _ in range(5)][-1] == 30 * NS_PER_S
    # A success clears only that client.
    for _ in range(5):
        throttle.record_failure("b")
    throttle.record_success("a")
    assert throttle.retry_after_ns("a") == 0
    assert throttle.retry_after_ns("b") > 0
    # Bounded memory.
    for i in range(1000):
        throttle.record_failure(f"10.0.{i // 256}.{i % 256}")
    assert len(throttle) == 50


def test_client_key_and_loopback() -> None:
    assert client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:2:ffff::1") == client_key("2001:db8:1:2::9")
    assert client_key(None) == "other:"
    assert is_loopback("127.0.0.1") and is_loopback("127.8.9.10")
    assert is_loopback("::1") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("192.0.2.1") and not is_loopback(None) and not is_loopback("junk")


def test_bearer_only_from_loopback(auth: Authenticator, events: Events) -> None:
    header = "Bearer " + LOCAL_TOKEN
    outcome = auth.authenticate(
        method="GET", target=WHOAMI, authorization=header, remote="192.0.2.10"
    )
    assert isinstance(outcome, Unauthorized)
    assert events.last_reason() == "bearer_not_loopback"
    assert LOCAL_TOKEN not in json.dumps([d for _, d in events.items], default=str)
    for remote in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        outcome = auth.authenticate(
            method="GET", target=WHOAMI, authorization=header, remote=remote
        )
        assert outcome == Authenticated(LOCAL_USER)


def test_core_throttle_outcome(auth: Authenticator, clock: FakeClock) -> None:
    def attempt(password: str, remote: str = "198.51.100.1") -> object:
        return auth.authenticate(
            method="GET", target="/", authorization=basic("alice", password), remote=remote
        )

    for _ in range(5):
        assert isinstance(attempt("bad-password"), Unauthorized)
    assert attempt(PW["alice"]) == Throttled(retry_after_s=30)
    assert isinstance(attempt(PW["alice"], remote="198.51.100.2"), Authenticated)
    clock.advance(30)
    assert isinstance(attempt(PW["alice"]), Authenticated)


def test_authenticator_rejects_bad_configuration(users: UserStore) -> None:
    with pytest.raises(ValueError):
        Authenticator(users, "")
    with pytest.raises(ValueError):
        Authenticator(users, "bad\nrealm")
    with pytest.raises(ValueError):
        Authenticator(users, "caméra")
    with pytest.raises(ValueError):
        Authenticator(users, REALM, local_token="short")
    quoted = Authenticator(users, 'odd "realm"')
    assert quoted.challenges()[0].startswith('Digest realm="odd \\"realm\\""')
