"""HTTP authentication for every HTTP entry point of the device.

The native REST API and the camera dialects (VAPIX, ISAPI, Dahua, ...) all authenticate
through one :class:`Authenticator`, because their clients differ in what they send but the
device must apply the same accounts, throttling and audit to all of them:

* ``Basic`` (RFC 7617): simple clients, curl, browsers; a dialect may switch it off
  (``allow_basic=False``), as cameras do when Digest is enforced.
* ``Digest`` (RFC 7616) with qop=auth and MD5 or SHA-256 (plus their ``-sess`` variants): what
  the dialects' client libraries speak. Nonces are stateless (an HMAC of their issue time), so
  issuing one costs no memory; replays are caught by remembering, per nonce, which nonce-counts
  were used, in a table of bounded size.
* ``Bearer <local token>``: the ``camio`` CLI on the same machine reads a token the daemon
  wrote into its data directory. Only accepted from a loopback peer, so the token alone is not
  enough from the network.

The module has two layers. The core (header parsing, digest computation, nonces, nonce-count
tracking, the failure throttle and :meth:`Authenticator.authenticate`) is plain Python with no
aiohttp types, so it is tested directly and reused by non-HTTP front ends. The aiohttp layer
(:func:`auth_middleware`, :func:`require_role`, JSON error responses) only translates.

Secrets are never logged: audit events carry the client address, the scheme, the claimed user
name and a reason code, never a password, token, digest response or the Authorization header.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import re
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Final
from urllib.parse import unquote, urlsplit

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware
from multidict import CIMultiDict

from camio.api.sessions import COOKIE, CSRF_HEADER, Session, SessionManager, csrf_ok
from camio.api.spec import spec_of
from camio.store.users import Role, User, UserStore

__all__ = [
    "DIGEST_ALGORITHMS",
    "LOCAL_USER",
    "MAX_AUTHORIZATION_LEN",
    "REALM_AUTH_KEY",
    "USER_KEY",
    "AuthEventHook",
    "AuthHeaderError",
    "AuthOutcome",
    "Authenticated",
    "Authenticator",
    "BasicCredentials",
    "BearerCredentials",
    "Credentials",
    "DigestCredentials",
    "FailureThrottle",
    "JSONForbidden",
    "JSONTooManyRequests",
    "JSONUnauthorized",
    "NcResult",
    "NonceCountTracker",
    "NonceManager",
    "NonceStatus",
    "RealmCache",
    "RealmResolver",
    "Throttled",
    "Unauthorized",
    "auth_middleware",
    "client_key",
    "digest_response",
    "is_loopback",
    "parse_auth_params",
    "parse_authorization",
    "require_role",
]

_log = logging.getLogger(__name__)

NS_PER_S: Final = 1_000_000_000

#: Longer Authorization headers are refused unparsed: a real one is well under 1 KiB, and
#: capping it bounds the work an anonymous client can make the parser do.
MAX_AUTHORIZATION_LEN: Final = 4096

#: Key of the authenticated :class:`User` in the aiohttp request.
USER_KEY: Final = web.RequestKey("user", User)

#: Who a request authenticated with the local Bearer token acts as. ``@`` is not allowed in
#: user names, so this can never collide with (or be created as) a real account.
LOCAL_USER: Final = User(name="@local", role=Role.ADMIN, created_wall_ns=0)

#: Audit hook: ``on_event(kind, data)``; kinds are ``"auth.failure"`` and ``"auth.throttled"``.
AuthEventHook = Callable[[str, dict[str, object]], None]


# =========================================================================================
# Header parsing
# =========================================================================================


class AuthHeaderError(ValueError):
    """The Authorization header is malformed.

    The message never quotes any part of the header (it goes to the audit log, and a confused
    user may have pasted a password anywhere in it).
    """


@dataclass(frozen=True)
class BasicCredentials:
    """``Authorization: Basic``: name and password in clear (only safe over TLS or loopback)."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class BearerCredentials:
    """``Authorization: Bearer``: the local CLI token."""

    token: str = field(repr=False)


@dataclass(frozen=True)
class DigestCredentials:
    """The fields of an ``Authorization: Digest`` header, validated for shape (not yet for
    correctness: that needs the password, the nonce key and the request)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str
    qop: str
    nc: int
    nc_text: str
    cnonce: str
    opaque: str | None


Credentials = BasicCredentials | DigestCredentials | BearerCredentials

# RFC 9110 tchar. Unquoted values are read more leniently (anything up to "," or whitespace)
# because some clients send e.g. an unquoted uri.
_TCHAR: Final = frozenset(
    "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
_WS: Final = " \t"
_TOKEN68_RE: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_HEX_RE: Final = re.compile(r"[0-9a-fA-F]+")


def parse_auth_params(text: str) -> dict[str, str]:
    """Parse ``name=value, name="quoted \\"value\\""`` (RFC 9110 auth-param list).

    Names are lower-cased. A repeated name is an error (RFC 7616 allows each directive once,
    and "first wins" vs "last wins" disagreements between parsers are a classic bypass). Runs
    in linear time: no regular expression that can backtrack on hostile input.
    """
    params: dict[str, str] = {}
    i, n = 0, len(text)
    while True:
        while i < n and (text[i] in _WS or text[i] == ","):
            i += 1
        if i >= n:
            return params
        start = i
        while i < n and text[i] in _TCHAR:
            i += 1
        if i == start:
            raise AuthHeaderError("expected a parameter name")
        name = text[start:i].lower()
        while i < n and text[i] in _WS:
            i += 1
        if i >= n or text[i] != "=":
            raise AuthHeaderError("a parameter has no value")
        i += 1
        while i < n and text[i] in _WS:
            i += 1
        if i < n and text[i] == '"':
            i += 1
            chars: list[str] = []
            while True:
                if i >= n:
                    raise AuthHeaderError("unterminated quoted value")
                ch = text[i]
                if ch == "\\":
                    if i + 1 >= n:
                        raise AuthHeaderError("unterminated quoted value")
                    chars.append(text[i + 1])
                    i += 2
                elif ch == '"':
                    i += 1
                    break
                else:
                    chars.append(ch)
                    i += 1
            value = "".join(chars)
        else:
            start = i
            while i < n and text[i] not in _WS and text[i] not in ',"':
                i += 1
            if i == start:
                raise AuthHeaderError("a parameter has an empty value")
            value = text[start:i]
        if name in params:
            raise AuthHeaderError("a parameter appears twice")
        params[name] = value
        while i < n and text[i] in _WS:
            i += 1
        if i < n and text[i] != ",":
            raise AuthHeaderError("expected ',' between parameters")


def parse_authorization(header: str) -> Credentials:
    """Turn an Authorization header value into credentials, or raise :class:`AuthHeaderError`.

    Only checks shape; whether the credentials are right is :class:`Authenticator`'s job.
    """
    if len(header) > MAX_AUTHORIZATION_LEN:
        raise AuthHeaderError("Authorization header too long")
    scheme, _, rest = header.strip().partition(" ")
    rest = rest.strip(_WS)
    match scheme.lower():
        case "basic":
            return _parse_basic(rest)
        case "digest":
            return _parse_digest(rest)
        case "bearer":
            if not rest or _TOKEN68_RE.fullmatch(rest) is None:
                raise AuthHeaderError("malformed Bearer token")
            return BearerCredentials(token=rest)
        case _:
            raise AuthHeaderError("unsupported authentication scheme")


def _parse_basic(rest: str) -> BasicCredentials:
    if not rest or _TOKEN68_RE.fullmatch(rest) is None:
        raise AuthHeaderError("malformed Basic credentials")
    try:
        decoded = base64.b64decode(rest, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # bad Base64, bad padding, not UTF-8
        raise AuthHeaderError("Basic credentials are not valid Base64 UTF-8") from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise AuthHeaderError("Basic credentials lack the ':' separator")
    if not username:
        raise AuthHeaderError("Basic credentials have an empty user name")
    return BasicCredentials(username=username, password=password)


_DIGEST_REQUIRED: Final = ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")


def _parse_digest(rest: str) -> DigestCredentials:
    params = parse_auth_params(rest)
    if "username*" in params or params.get("userhash", "false").lower() == "true":
        raise AuthHeaderError("userhash and username* are not supported")
    missing = [name for name in _DIGEST_REQUIRED if not params.get(name)]
    if missing:
        # The RFC 2069 form without qop/nc/cnonce is refused: it has no replay protection.
        raise AuthHeaderError(f"Digest credentials lack {', '.join(missing)}")
    algorithm = params.get("algorithm", "MD5").upper()
    hash_fn = DIGEST_ALGORITHMS.get(algorithm)
    if hash_fn is None:
        raise AuthHeaderError("unsupported Digest algorithm")
    if params["qop"].lower() != "auth":
        raise AuthHeaderError("only qop=auth is supported")
    nc_text = params["nc"]
    if len(nc_text) != 8 or _HEX_RE.fullmatch(nc_text) is None:
        raise AuthHeaderError("nc must be 8 hexadecimal digits")
    nc = int(nc_text, 16)
    if nc == 0:
        raise AuthHeaderError("nc starts at 1")
    response = params["response"].lower()
    if len(response) != 2 * hash_fn(b"").digest_size or _HEX_RE.fullmatch(response) is None:
        raise AuthHeaderError("malformed Digest response")
    if len(params["cnonce"]) > 256:
        raise AuthHeaderError("cnonce too long")
    return DigestCredentials(
        username=params["username"],
        realm=params["realm"],
        nonce=params["nonce"],
        uri=params["uri"],
        response=response,
        algorithm=algorithm,
        qop="auth",
        nc=nc,
        nc_text=nc_text,
        cnonce=params["cnonce"],
        opaque=params.get("opaque"),
    )


# =========================================================================================
# Digest computation
# =========================================================================================

#: Accepted algorithms (upper-case, as normalised by the parser). Only MD5 and SHA-256 are
#: offered in challenges; the ``-sess`` variants cost nothing extra to accept.
DIGEST_ALGORITHMS: Final[Mapping[str, Callable[[bytes], hashlib._Hash]]] = {
    "MD5": hashlib.md5,
    "MD5-SESS": hashlib.md5,
    "SHA-256": hashlib.sha256,
    "SHA-256-SESS": hashlib.sha256,
}


def digest_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    nc: str,
    cnonce: str,
    qop: str = "auth",
) -> str:
    """The ``response`` a client must send (RFC 7616 section 3.4.1, qop=auth), lower-case hex.

    Used by the server to check a request, and by tests to forge precise ones.
    """
    algo = algorithm.upper()
    hash_fn = DIGEST_ALGORITHMS[algo]

    def h(data: str) -> str:
        return hash_fn(data.encode("utf-8")).hexdigest()

    ha1 = h(f"{username}:{realm}:{password}")
    if algo.endswith("-SESS"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    ha2 = h(f"{method.upper()}:{uri}")
    return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def _origin_form(target: str) -> str:
    """``/path?query`` of a request target; absolute URIs (``http://host/path``) are reduced
    to it, because a few clients put the absolute form in the digest ``uri``."""
    lowered = target[:8].lower()
    if lowered.startswith(("http://", "https://")):
        parts = urlsplit(target)
        path = parts.path or "/"
        return f"{path}?{parts.query}" if parts.query else path
    return target


def _uri_matches(digest_uri: str, request_target: str) -> bool:
    """The digest was computed for *this* request: otherwise a captured header could be
    replayed against another resource within the nonce lifetime (RFC 7616 section 3.4.6)."""
    signed, actual = _origin_form(digest_uri), _origin_form(request_target)
    # Clients disagree on percent-encoding the query they sign (axis v74 quotes ':' and '/'
    # that it sends raw): the same resource after decoding is the same request.
    return signed == actual or unquote(signed) == unquote(actual)


# =========================================================================================
# Nonces
# =========================================================================================


class NonceStatus(Enum):
    """What a nonce presented by a client turned out to be."""

    VALID = "valid"
    STALE = "stale"  #: ours, intact, but older than the lifetime
    INVALID = "invalid"  #: not made by us (forged, altered, or from before a restart)


class NonceManager:
    """Stateless nonces: ``hex(issue_time + offset) || hex(HMAC(key, that)[:16])``.

    Nothing is stored per nonce, so anonymous clients fetching challenges cost no memory. The
    key is random per process, so nonces do not survive a restart (clients simply get a new
    challenge). The random offset keeps the monotonic clock (the device's uptime) out of the
    nonce. ``now_ns`` is a monotonic clock.
    """

    _TS_HEX: Final = 16
    _MAC_BYTES: Final = 16
    _MASK: Final = (1 << 64) - 1
    _NONCE_RE: Final = re.compile(r"[0-9a-f]{48}")

    def __init__(
        self,
        *,
        now_ns: Callable[[], int],
        lifetime_ns: int,
        key: bytes | None = None,
    ) -> None:
        self._now_ns = now_ns
        self._lifetime_ns = lifetime_ns
        self._key = key if key is not None else secrets.token_bytes(32)
        self._offset = secrets.randbits(64)

    def _mac(self, field: int) -> bytes:
        msg = b"camio-digest-nonce\x00" + field.to_bytes(8, "big")
        return hmac.new(self._key, msg, hashlib.sha256).digest()[: self._MAC_BYTES]

    def issue(self) -> str:
        """A fresh nonce, valid for the lifetime from now."""
        field = (self._now_ns() + self._offset) & self._MASK
        return f"{field:0{self._TS_HEX}x}{self._mac(field).hex()}"

    def check(self, nonce: str) -> tuple[NonceStatus, int]:
        """The nonce's status and its issue time (meaningful unless INVALID)."""
        if self._NONCE_RE.fullmatch(nonce) is None:
            return NonceStatus.INVALID, 0
        field = int(nonce[: self._TS_HEX], 16)
        mac = bytes.fromhex(nonce[self._TS_HEX :])
        if not hmac.compare_digest(mac, self._mac(field)):
            return NonceStatus.INVALID, 0
        issued_ns = (field - self._offset) & self._MASK
        age = self._now_ns() - issued_ns
        if age < 0:
            return NonceStatus.INVALID, 0
        if age > self._lifetime_ns:
            return NonceStatus.STALE, issued_ns
        return NonceStatus.VALID, issued_ns


class NcResult(Enum):
    """Outcome of presenting a nonce-count."""

    ACCEPTED = "accepted"
    REPLAY = "replay"  #: this (nonce, nc) was already used, or is too far behind
    FORGOTTEN = "forgotten"  #: the nonce fell out of the bounded table; ask for a fresh one


class NonceCountTracker:
    """Refuses a (nonce, nc) pair seen before, in bounded memory.

    Per nonce it keeps the highest nc and a bit mask of the ``window`` counts below it (the
    IPsec anti-replay window), so a client sending concurrent requests whose counts arrive out
    of order is still served. At most ``max_nonces`` nonces are tracked; the least recently
    used is evicted first. An evicted nonce could otherwise be replayed, so the tracker also
    remembers the newest issue time it ever evicted: an untracked nonce issued at or before it
    is answered ``FORGOTTEN`` (the server then sends ``stale=true`` and the client picks up a
    new nonce) instead of being trusted as fresh.
    """

    def __init__(self, *, lifetime_ns: int, max_nonces: int = 8192, window: int = 64) -> None:
        self._lifetime_ns = lifetime_ns
        self._max_nonces = max_nonces
        self._window = window
        self._mask = (1 << window) - 1
        # nonce -> (issued_ns, highest nc, bit mask; bit k = highest - k was used)
        self._seen: OrderedDict[str, tuple[int, int, int]] = OrderedDict()
        self._evicted_up_to_ns = -1

    def __len__(self) -> int:
        return len(self._seen)

    def use(self, nonce: str, issued_ns: int, nc: int, now_ns: int) -> NcResult:
        """Record ``nc`` for ``nonce`` if it was not used before."""
        entry = self._seen.get(nonce)
        if entry is None:
            if issued_ns <= self._evicted_up_to_ns:
                return NcResult.FORGOTTEN
            self._seen[nonce] = (issued_ns, nc, 1)
            self._prune(now_ns)
            return NcResult.ACCEPTED
        _, highest, mask = entry
        if nc > highest:
            mask = ((mask << (nc - highest)) | 1) & self._mask
            highest = nc
        else:
            offset = highest - nc
            if offset >= self._window or mask & (1 << offset):
                return NcResult.REPLAY
            mask |= 1 << offset
        self._seen[nonce] = (issued_ns, highest, mask)
        self._seen.move_to_end(nonce)
        return NcResult.ACCEPTED

    def _prune(self, now_ns: int) -> None:
        # Expired nonces are refused as stale anyway: drop them from the cold end first.
        while self._seen:
            oldest_nonce, (issued_ns, _, _) = next(iter(self._seen.items()))
            expired = now_ns - issued_ns > self._lifetime_ns
            if not expired and len(self._seen) <= self._max_nonces:
                break
            del self._seen[oldest_nonce]
            if not expired:
                self._evicted_up_to_ns = max(self._evicted_up_to_ns, issued_ns)


# =========================================================================================
# Throttling
# =========================================================================================


@dataclass
class _ClientFailures:
    failures: deque[int]
    blocked_until_ns: int = 0
    lockouts: int = 0
    last_seen_ns: int = 0


class FailureThrottle:
    """Back-off for clients that keep failing to authenticate (password guessing).

    ``max_failures`` failures within ``window_ns`` lock the client out for a back-off that
    doubles with each consecutive lockout, from ``base_backoff_ns`` up to ``max_backoff_ns``.
    The growth is forgotten after a quiet period as long as the cap, or on a success. While
    locked out the client is refused without its credentials being checked, so guessing stops
    costing the device a decryption per attempt.

    Clients are keyed by :func:`client_key` (IPv6 per /64, since one host owns a whole /64).
    At most ``max_clients`` are tracked, least recently active evicted first; flooding the table
    from many addresses only frees those addresses' own history.
    """

    def __init__(
        self,
        *,
        now_ns: Callable[[], int],
        max_failures: int = 5,
        window_ns: int = 60 * NS_PER_S,
        base_backoff_ns: int = 30 * NS_PER_S,
        max_backoff_ns: int = 15 * 60 * NS_PER_S,
        max_clients: int = 10_000,
    ) -> None:
        self._now_ns = now_ns
        self._max_failures = max_failures
        self._window_ns = window_ns
        self._base_backoff_ns = base_backoff_ns
        self._max_backoff_ns = max_backoff_ns
        self._max_clients = max_clients
        self._clients: OrderedDict[str, _ClientFailures] = OrderedDict()

    def __len__(self) -> int:
        return len(self._clients)

    def retry_after_ns(self, client: str) -> int:
        """Nanoseconds until ``client`` may try again; 0 if it may try now."""
        state = self._clients.get(client)
        if state is None:
            return 0
        return max(0, state.blocked_until_ns - self._now_ns())

    def record_failure(self, client: str) -> int:
        """Count a failure. Returns the back-off (ns) if this failure started a lockout, else 0."""
        now = self._now_ns()
        state = self._clients.get(client)
        if state is None:
            state = _ClientFailures(failures=deque(maxlen=self._max_failures))
            self._clients[client] = state
            while len(self._clients) > self._max_clients:
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(client)
        quiet_since = max(state.last_seen_ns, state.blocked_until_ns)
        if state.lockouts and now - quiet_since > self._max_backoff_ns:
            state.lockouts = 0
        state.last_seen_ns = now
        state.failures.append(now)
        while state.failures and now - state.failures[0] > self._window_ns:
            state.failures.popleft()
        if len(state.failures) < self._max_failures:
            return 0
        backoff = min(self._base_backoff_ns << min(state.lockouts, 32), self._max_backoff_ns)
        state.lockouts += 1
        state.blocked_until_ns = now + backoff
        state.failures.clear()
        return backoff

    def record_success(self, client: str) -> None:
        """The client proved it knows a password: forget its failures (only its own)."""
        self._clients.pop(client, None)


def _parse_ip(remote: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not remote:
        return None
    try:
        ip = ipaddress.ip_address(remote)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def client_key(remote: str | None) -> str:
    """The throttling key of a peer address: the IPv4 address, or the IPv6 /64."""
    ip = _parse_ip(remote)
    if ip is None:
        return f"other:{(remote or '')[:64]}"
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def is_loopback(remote: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback; False for anything unparsable."""
    ip = _parse_ip(remote)
    return ip is not None and ip.is_loopback


# =========================================================================================
# The authenticator
# =========================================================================================


@dataclass(frozen=True)
class Authenticated:
    """The request may proceed as ``user``."""

    user: User


@dataclass(frozen=True)
class Unauthorized:
    """Answer 401 with challenges. ``message`` is safe to show the client."""

    message: str
    stale: bool = False


@dataclass(frozen=True)
class Throttled:
    """Answer 429; the client may retry after ``retry_after_s`` seconds."""

    retry_after_s: int


AuthOutcome = Authenticated | Unauthorized | Throttled

_MSG_REQUIRED: Final = "authentication required"
_LOGIN_CACHE_NS: Final = 600 * NS_PER_S
_LOGIN_CACHE_SIZE: Final = 256
_MSG_MALFORMED: Final = "malformed Authorization header"
_MSG_INVALID: Final = "invalid credentials"
_NAME_SAFE_RE: Final = re.compile(r"[^A-Za-z0-9._-]")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _safe_name(name: str) -> str:
    """A claimed user name made safe for logs (no control characters, bounded length)."""
    return _NAME_SAFE_RE.sub("?", name[:32])


class Authenticator:
    """Decides who a request is, for one realm, with shared accounts, throttle and audit.

    :meth:`authenticate` is the pure core (strings in, an :data:`AuthOutcome` out);
    :meth:`check_request` applies it to an aiohttp request and raises JSON HTTP errors.
    """

    def __init__(
        self,
        users: UserStore,
        realm: str,
        *,
        now_ns: Callable[[], int] = time.monotonic_ns,
        local_token: str | None = None,
        allow_basic: bool = True,
        on_event: AuthEventHook | None = None,
        nonce_lifetime_ns: int = 300 * NS_PER_S,
        throttle: FailureThrottle | None = None,
        digest_algorithms: tuple[str, ...] = ("SHA-256", "MD5"),
        parent: Authenticator | None = None,
        throttled_as_401: bool = False,
    ) -> None:
        if not realm or not realm.isascii() or not realm.isprintable():
            # It goes into a response header, which must stay printable ASCII.
            raise ValueError("realm must be non-empty printable ASCII")
        if local_token is not None and len(local_token) < 16:
            raise ValueError("local_token is too short to be a secret")
        if not digest_algorithms or any(a not in DIGEST_ALGORITHMS for a in digest_algorithms):
            raise ValueError("digest_algorithms must name supported algorithms")
        self.users = users
        self.digest_algorithms = digest_algorithms
        self._parent = parent
        # Camera clients treat 429 as a fatal error but 401 as "no access": a dialect may
        # answer a throttled client with a plain challenge (still without checking anything).
        self.throttled_as_401 = throttled_as_401
        self.realm = realm
        self.allow_basic = allow_basic
        self._now_ns = now_ns
        self._local_token_digest = (
            hashlib.sha256(local_token.encode("utf-8")).digest() if local_token else None
        )
        self._on_event = on_event
        self._nonce_lifetime_ns = nonce_lifetime_ns
        self._nonces = NonceManager(now_ns=now_ns, lifetime_ns=nonce_lifetime_ns)
        self._nc_tracker = NonceCountTracker(lifetime_ns=nonce_lifetime_ns)
        self._throttle = throttle if throttle is not None else FailureThrottle(now_ns=now_ns)
        # Per account as well as per client, so a spread-out guessing attack on one account
        # is slowed too. Requests without credentials never count (Digest clients always start
        # that way), so a client's first unauthenticated request is never held against it.
        self._user_throttle = FailureThrottle(now_ns=now_ns, max_failures=10)
        # Basic sends the password with every request and the login hash is deliberately slow:
        # a verified (name, password) is remembered with the user's credential stamp, so the
        # next request costs a lookup, and a password change anywhere invalidates it.
        self._login_cache: OrderedDict[bytes, tuple[str, int]] = OrderedDict()
        self._cache_key = secrets.token_bytes(32)
        # Opaque is echoed back by clients; it carries no meaning, a constant per process is
        # enough to tell our challenges from another server's.
        self._opaque = secrets.token_hex(16)
        # Digest against an unknown user is computed with this, so it costs the same.
        self._dummy_password = secrets.token_urlsafe(24)

    # -- realms ---------------------------------------------------------------------------

    @property
    def throttle(self) -> FailureThrottle:
        """Failures per client; a realm made by :meth:`for_realm` shares its parent's."""
        return self._parent.throttle if self._parent is not None else self._throttle

    @throttle.setter
    def throttle(self, value: FailureThrottle) -> None:
        if self._parent is not None:
            self._parent.throttle = value
        else:
            self._throttle = value

    @property
    def user_throttle(self) -> FailureThrottle:
        """Failures per account; shared with the parent like :attr:`throttle`."""
        return self._parent.user_throttle if self._parent is not None else self._user_throttle

    @user_throttle.setter
    def user_throttle(self, value: FailureThrottle) -> None:
        if self._parent is not None:
            self._parent.user_throttle = value
        else:
            self._user_throttle = value

    def for_realm(
        self,
        realm: str,
        *,
        allow_basic: bool = True,
        digest_algorithms: tuple[str, ...] = ("SHA-256", "MD5"),
        throttled_as_401: bool = False,
    ) -> Authenticator:
        """An authenticator for a dialect's own realm (``AXIS_<serial>``, ...): the same
        accounts, throttles and audit hook as this one, its own nonces and challenges. The
        local Bearer token is not accepted there (the CLI speaks the native API)."""
        return Authenticator(
            self.users,
            realm,
            now_ns=self._now_ns,
            allow_basic=allow_basic,
            on_event=self._on_event,
            nonce_lifetime_ns=self._nonce_lifetime_ns,
            digest_algorithms=digest_algorithms,
            parent=self,
            throttled_as_401=throttled_as_401,
        )

    # -- challenges -----------------------------------------------------------------------

    def challenges(self, *, stale: bool = False) -> list[str]:
        """The ``WWW-Authenticate`` values for a 401, strongest first.

        Both Digest challenges carry the same nonce, so a client that merges the headers into
        one (``requests`` does) still ends up with a nonce that works with the algorithm it
        picks.
        """
        nonce = self._nonces.issue()
        realm = _quote(self.realm)
        tail = ", stale=true" if stale else ""
        values = [
            f'Digest realm={realm}, qop="auth", algorithm={algorithm}, '
            f'nonce="{nonce}", opaque="{self._opaque}"{tail}'
            for algorithm in self.digest_algorithms
        ]
        if self.allow_basic:
            values.append(f"Basic realm={realm}")
        return values

    # -- the core -------------------------------------------------------------------------

    def authenticate(
        self,
        *,
        method: str,
        target: str,
        authorization: str | None,
        remote: str | None,
    ) -> AuthOutcome:
        """Decide about one request.

        ``target`` is the request target as sent (path and query, still percent-encoded);
        ``authorization`` the header value (None if absent); ``remote`` the peer address.
        A request without credentials is not a failure (every Digest client starts that way);
        wrong or malformed credentials are, and count towards throttling.
        """
        client = client_key(remote)
        wait_ns = self.throttle.retry_after_ns(client)
        if wait_ns > 0:
            return Throttled(retry_after_s=max(1, math.ceil(wait_ns / NS_PER_S)))
        if authorization is None or not authorization.strip():
            return Unauthorized(_MSG_REQUIRED)
        scheme = authorization.strip().partition(" ")[0].lower()
        try:
            creds = parse_authorization(authorization)
        except AuthHeaderError as exc:
            return self._fail(client, remote, scheme, None, "malformed", _MSG_MALFORMED, str(exc))
        if isinstance(creds, BasicCredentials):
            return self._basic(creds, client, remote)
        if isinstance(creds, DigestCredentials):
            return self._digest(creds, method, target, client, remote)
        return self._bearer(creds, client, remote)

    def _basic(self, creds: BasicCredentials, client: str, remote: str | None) -> AuthOutcome:
        if not self.allow_basic:
            # Not a guess, just a client that prefers Basic: challenge it for Digest.
            return Unauthorized("Basic authentication is disabled here; use Digest")
        return self.check_password(creds.username, creds.password, client, remote, "basic")

    def check_password(
        self, username: str, password: str, client: str, remote: str | None, scheme: str
    ) -> AuthOutcome:
        """Verify a name and password (Basic, or the web login form), with both throttles."""
        user_key = _safe_name(username).lower()
        wait_ns = self.user_throttle.retry_after_ns(user_key)
        if wait_ns > 0:
            return Throttled(retry_after_s=max(1, math.ceil(wait_ns / NS_PER_S)))
        cache_key = hmac.new(
            self._cache_key, f"{username}\0{password}".encode("utf-8", "replace"), "sha256"
        ).digest()
        cached = self._login_cache.get(cache_key)
        now = self._now_ns()
        if cached is not None and cached[1] > now:
            credential = self.users.credential(username)
            if credential is not None and hmac.compare_digest(credential[1], cached[0]):
                return self._succeed(client, credential[0])
            del self._login_cache[cache_key]
        user = self.users.verify(username, password)
        if user is None:
            self.user_throttle.record_failure(user_key)
            return self._fail(client, remote, scheme, username, "bad_credentials")
        credential = self.users.credential(user.name)
        if credential is not None:
            self._login_cache[cache_key] = (credential[1], now + _LOGIN_CACHE_NS)
            while len(self._login_cache) > _LOGIN_CACHE_SIZE:
                self._login_cache.popitem(last=False)
        self.user_throttle.record_success(user_key)
        return self._succeed(client, user)

    def login(self, username: str, password: str, remote: str | None) -> AuthOutcome:
        """The web login form: the same checks and throttles as Basic, for one request."""
        client = client_key(remote)
        wait_ns = self.throttle.retry_after_ns(client)
        if wait_ns > 0:
            return Throttled(retry_after_s=max(1, math.ceil(wait_ns / NS_PER_S)))
        return self.check_password(username, password, client, remote, "form")

    def _digest(
        self,
        creds: DigestCredentials,
        method: str,
        target: str,
        client: str,
        remote: str | None,
    ) -> AuthOutcome:
        def fail(reason: str) -> AuthOutcome:
            return self._fail(client, remote, "digest", creds.username, reason)

        if creds.realm != self.realm:
            return fail("realm_mismatch")
        if not _uri_matches(creds.uri, target):
            return fail("uri_mismatch")
        if creds.opaque is not None and not hmac.compare_digest(creds.opaque, self._opaque):
            return fail("opaque_mismatch")
        status, issued_ns = self._nonces.check(creds.nonce)
        if status is NonceStatus.INVALID:
            return fail("bad_nonce")
        password = self.users.password_of(creds.username)
        expected = digest_response(
            algorithm=creds.algorithm,
            username=creds.username,
            realm=self.realm,
            password=password if password is not None else self._dummy_password,
            method=method,
            uri=creds.uri,
            nonce=creds.nonce,
            nc=creds.nc_text,
            cnonce=creds.cnonce,
        )
        matches = hmac.compare_digest(expected, creds.response)
        if password is None or not matches:
            return fail("bad_credentials")
        if status is NonceStatus.STALE:
            # Right password, old nonce: not an attack, tell the client to retry (RFC 7616).
            return Unauthorized("nonce expired", stale=True)
        nc_result = self._nc_tracker.use(creds.nonce, issued_ns, creds.nc, self._now_ns())
        if nc_result is NcResult.FORGOTTEN:
            return Unauthorized("nonce expired", stale=True)
        if nc_result is NcResult.REPLAY:
            return fail("nonce_count_replay")
        user = self.users.get(creds.username)
        if user is None:  # deleted between the two lookups
            return fail("bad_credentials")
        return self._succeed(client, user)

    def _bearer(self, creds: BearerCredentials, client: str, remote: str | None) -> AuthOutcome:
        if self._local_token_digest is None:
            return self._fail(client, remote, "bearer", None, "bearer_disabled")
        if not is_loopback(remote):
            return self._fail(
                client,
                remote,
                "bearer",
                None,
                "bearer_not_loopback",
                "the local token is only accepted from this machine",
            )
        presented = hashlib.sha256(creds.token.encode("utf-8")).digest()
        if not hmac.compare_digest(presented, self._local_token_digest):
            return self._fail(client, remote, "bearer", None, "bad_token")
        return self._succeed(client, LOCAL_USER)

    def _succeed(self, client: str, user: User) -> Authenticated:
        self.throttle.record_success(client)
        return Authenticated(user)

    def _fail(
        self,
        client: str,
        remote: str | None,
        scheme: str,
        username: str | None,
        reason: str,
        message: str = _MSG_INVALID,
        detail: str | None = None,
    ) -> Unauthorized:
        backoff_ns = self.throttle.record_failure(client)
        data: dict[str, object] = {
            "remote": remote,
            "scheme": scheme if scheme in ("basic", "digest", "bearer", "form") else "other",
            "user": None if username is None else _safe_name(username),
            "reason": reason,
            "realm": self.realm,
        }
        if detail is not None:
            data["detail"] = detail
        self._emit("auth.failure", data)
        if backoff_ns:
            self._emit(
                "auth.throttled",
                {
                    "remote": remote,
                    "client": client,
                    "retry_after_s": math.ceil(backoff_ns / NS_PER_S),
                    "realm": self.realm,
                },
            )
        return Unauthorized(message)

    def _emit(self, kind: str, data: dict[str, object]) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(kind, data)
        except Exception:
            # The audit sink failing must not turn a 401 into a 500 (or let a request through).
            _log.exception("audit hook failed for %s", kind)

    def _refuse_ambiguous(self, remote: str | None) -> AuthOutcome:
        client = client_key(remote)
        wait_ns = self.throttle.retry_after_ns(client)
        if wait_ns > 0:
            return Throttled(retry_after_s=max(1, math.ceil(wait_ns / NS_PER_S)))
        return self._fail(
            client,
            remote,
            "other",
            None,
            "malformed",
            _MSG_MALFORMED,
            "several Authorization headers",
        )

    # -- aiohttp --------------------------------------------------------------------------

    def check_request(self, request: web.Request) -> User:
        """Authenticate an aiohttp request; raise a JSON 401 or 429 if it may not proceed."""
        values = request.headers.getall(hdrs.AUTHORIZATION, [])
        outcome: AuthOutcome
        if len(values) > 1:
            # Two Authorization headers: a proxy and we might each read a different one.
            outcome = self._refuse_ambiguous(request.remote)
        else:
            outcome = self.authenticate(
                method=request.method,
                target=request.raw_path,
                authorization=values[0] if values else None,
                remote=request.remote,
            )
        if isinstance(outcome, Authenticated):
            return outcome.user
        if isinstance(outcome, Throttled) and self.throttled_as_401:
            raise JSONUnauthorized("too many failed logins", challenges=self.challenges())
        if isinstance(outcome, Throttled):
            raise JSONTooManyRequests(
                f"too many failed logins; retry in {outcome.retry_after_s} s",
                retry_after_s=outcome.retry_after_s,
            )
        raise JSONUnauthorized(outcome.message, challenges=self.challenges(stale=outcome.stale))


# =========================================================================================
# aiohttp layer
# =========================================================================================


def _json_text(error: str, message: str) -> str:
    return json.dumps({"error": error, "message": message})


class JSONUnauthorized(web.HTTPUnauthorized):
    """401 with a JSON body and one ``WWW-Authenticate`` header per challenge."""

    def __init__(self, message: str, *, challenges: Iterable[str] = ()) -> None:
        headers: CIMultiDict[str] = CIMultiDict()
        for challenge in challenges:
            headers.add(hdrs.WWW_AUTHENTICATE, challenge)
        headers[hdrs.CACHE_CONTROL] = "no-store"
        super().__init__(
            headers=headers,
            text=_json_text("unauthorized", message),
            content_type="application/json",
        )


class JSONForbidden(web.HTTPForbidden):
    """403 with a JSON body: authenticated, but the role does not allow this (or, with
    ``error="csrf"``, a session call without its CSRF token)."""

    def __init__(self, message: str, *, error: str = "forbidden") -> None:
        super().__init__(text=_json_text(error, message), content_type="application/json")


class JSONTooManyRequests(web.HTTPTooManyRequests):
    """429 with a JSON body and ``Retry-After`` (seconds)."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(
            headers={hdrs.RETRY_AFTER: str(retry_after_s)},
            text=_json_text("too_many_requests", message),
            content_type="application/json",
        )


SESSION_KEY: Final = web.RequestKey("session", Session)
#: The authenticator of a dialect route's realm, for handlers of public dialect routes that
#: check credentials themselves (never the native one: another realm, other Basic setting).
REALM_AUTH_KEY: Final = web.RequestKey("realm_auth", Authenticator)

#: Picks the authenticator of a dialect's routes for a request (see :func:`auth_middleware`).
RealmResolver = Callable[[web.Request], "Authenticator"]


class RealmCache:
    """A dialect's authenticator for its current realm and Basic setting, made from ``base``
    on demand and kept until either changes (a new serial or Basic setting is a new realm:
    its old nonces become invalid). Camera clients treat 429 as fatal: throttled as 401."""

    def __init__(self, base: Authenticator, *, digest_algorithms: tuple[str, ...] = ("MD5",)):
        self._base = base
        self._algorithms = digest_algorithms
        self._current: tuple[tuple[str, bool], Authenticator] | None = None

    def get(self, realm: str, *, allow_basic: bool) -> Authenticator:
        key = (realm, allow_basic)
        if self._current is None or self._current[0] != key:
            auth = self._base.for_realm(
                realm,
                allow_basic=allow_basic,
                digest_algorithms=self._algorithms,
                throttled_as_401=True,
            )
            self._current = (key, auth)
        return self._current[1]


_UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _from_browser_script(request: web.Request) -> bool:
    """A fetch/XHR from a page (not a navigation): its 401 must not carry Basic/Digest
    challenges, or the browser would pop up its own login dialog over the web interface."""
    return request.headers.get("Sec-Fetch-Dest") == "empty" or COOKIE in request.cookies


def _cross_origin(request: web.Request) -> bool:
    """A state-changing request a browser sent from another site (``Origin`` names another
    host): refused even with valid credentials, since a browser may attach cached Basic
    credentials or the session cookie on its own."""
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None or origin == "null":
        return origin == "null"
    return urlsplit(origin).netloc.lower() != request.host.lower()


def auth_middleware(
    authenticator: Authenticator,
    *,
    public_paths: frozenset[str] = frozenset(),
    sessions: SessionManager | None = None,
    realms: Mapping[str, RealmResolver] | None = None,
) -> Middleware:
    """An aiohttp middleware that authenticates every request and sets ``request["user"]``.

    A route is public when its :class:`~camio.api.spec.RouteSpec` says ``role=None`` (or its
    path is in ``public_paths``); everything else is refused unless authenticated: fail
    closed, so a new route, or one without a spec, is never public by accident.

    Credentials: the ``Authorization`` header (Basic, Digest, the local Bearer token) or the
    session cookie. A state-changing request on a session must carry the session's CSRF token
    in ``X-CSRF-Token``; any state-changing request from another origin is refused.

    A camera dialect's route (``RouteSpec.dialect``) is authenticated by the authenticator
    ``realms[dialect](request)`` returns (its vendor's realm, the same accounts and
    throttles); the resolver raises ``HTTPNotFound`` while the dialect is off, before any
    credentials are looked at. Dialect routes take no session cookie: their clients are
    cameras' clients, and a browser's cookie must not switch a relay from a link; for the same
    reason a request a browser marks ``Sec-Fetch-Site: cross-site`` is refused there (it would
    carry the Basic/Digest credentials the browser holds).
    """
    resolvers: Mapping[str, RealmResolver] = realms or {}

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        route_spec = spec_of(request.match_info.handler)
        realm_auth = authenticator
        dialect = route_spec.dialect if route_spec is not None else None
        if dialect is not None:
            resolver = resolvers.get(dialect)
            if resolver is None:
                raise web.HTTPNotFound()
            realm_auth = resolver(request)
            request[REALM_AUTH_KEY] = realm_auth
            if request.headers.get("Sec-Fetch-Site") == "cross-site":
                # Dialect CGIs change state on GET, and a browser attaches the Basic/Digest
                # credentials it holds to any cross-site <img> or link; cameras' clients send
                # no Sec-Fetch-* header.
                raise JSONForbidden("cross-site request refused")
        public = request.path in public_paths or (
            route_spec is not None and route_spec.role is None
        )
        unsafe = request.method in _UNSAFE_METHODS
        if unsafe and _cross_origin(request):
            raise JSONForbidden("cross-origin request refused")
        if public:
            return await handler(request)
        if dialect is not None:
            request[USER_KEY] = realm_auth.check_request(request)
            return await handler(request)
        token = request.cookies.get(COOKIE)
        if sessions is not None and token and hdrs.AUTHORIZATION not in request.headers:
            resolved = sessions.resolve(token)
            if resolved is None:
                raise JSONUnauthorized("session expired; log in again")
            session, user = resolved
            csrf_needed = route_spec is None or route_spec.csrf
            if unsafe and csrf_needed and not csrf_ok(session, request.headers.get(CSRF_HEADER)):
                raise JSONForbidden(f"missing or wrong {CSRF_HEADER} header", error="csrf")
            request[USER_KEY] = user
            request[SESSION_KEY] = session
            return await handler(request)
        try:
            request[USER_KEY] = authenticator.check_request(request)
        except JSONUnauthorized as exc:
            if _from_browser_script(request):
                exc.headers.popall(hdrs.WWW_AUTHENTICATE, None)
            raise
        return await handler(request)

    return middleware


def require_role(request: web.Request, role: Role) -> User:
    """The authenticated user, if their role allows ``role``; else a JSON 403.

    A request that carries no user (a public path, or a server without the middleware) is
    refused as well, so a misconfigured route fails closed.
    """
    user = request.get(USER_KEY)
    if not isinstance(user, User):
        raise JSONForbidden("this operation requires an authenticated user")
    if not user.role.allows(role):
        raise JSONForbidden(f"this operation requires the {role.value} role")
    return user
