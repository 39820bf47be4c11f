"""WS-Security UsernameToken (PasswordDigest and PasswordText) for the ONVIF services.

What a client sends (``wsse:Security/wsse:UsernameToken``): ``Username``, ``Password`` with a
``Type`` (…#PasswordDigest or …#PasswordText), ``Nonce`` (Base64) and ``wsu:Created`` (UTC).

Checks, in order: the client is not throttled; the token is complete (a digest needs Nonce and
Created); ``Created`` lies within ``window`` of the device clock; the password matches
(``Base64(SHA1(nonce + Created + password))`` for a digest, computed from the stored secret;
PasswordText through the same password check as HTTP Basic); the ``(Nonce, Created)`` pair has
not been seen before (a replay cache bounded in size and time: entries expire when their
Created leaves the window; while it is full of unexpired entries, new tokens are refused).

Failures count in the same per-client and per-account throttles as HTTP Basic/Digest (they come
from the :class:`~camio.api.auth.Authenticator`). Passwords, digests and nonces are never logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from lxml import etree

from camio.api.auth import Authenticated, Authenticator, client_key
from camio.store.users import User

NS_WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
NS_WSU: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DIGEST_TYPE_SUFFIX: Final = "#PasswordDigest"
TEXT_TYPE_SUFFIX: Final = "#PasswordText"
_MAX_FIELD: Final = 256


class TokenError(Exception):
    """The token is refused; the message is safe to show the client."""


@dataclass(frozen=True, slots=True)
class UsernameToken:
    username: str
    password: str
    digest: bool
    nonce: bytes | None
    nonce_text: str | None
    created: str | None


def find_token(header: etree._Element | None) -> UsernameToken | None:
    """The UsernameToken in a SOAP Header, None if there is none; :class:`TokenError` if it
    is malformed."""
    if header is None:
        return None
    security = header.find(f"{{{NS_WSSE}}}Security")
    if security is None:
        return None
    token = security.find(f"{{{NS_WSSE}}}UsernameToken")
    if token is None:
        raise TokenError("the Security header has no UsernameToken")

    def child(ns: str, name: str) -> etree._Element | None:
        return token.find(f"{{{ns}}}{name}")

    user_el = child(NS_WSSE, "Username")
    pass_el = child(NS_WSSE, "Password")
    if user_el is None or pass_el is None:
        raise TokenError("the UsernameToken lacks Username or Password")
    username = (user_el.text or "").strip()
    password = pass_el.text or ""
    ptype = pass_el.get("Type", TEXT_TYPE_SUFFIX)
    if ptype.endswith(DIGEST_TYPE_SUFFIX):
        digest = True
    elif ptype.endswith(TEXT_TYPE_SUFFIX):
        digest = False
    else:
        raise TokenError("unsupported password type")
    nonce_el = child(NS_WSSE, "Nonce")
    created_el = child(NS_WSU, "Created")
    if created_el is None:  # some clients put Created in the wsse namespace
        created_el = child(NS_WSSE, "Created")
    nonce_text = (nonce_el.text or "").strip() if nonce_el is not None else None
    created = (created_el.text or "").strip() if created_el is not None else None
    if any(len(v) > _MAX_FIELD for v in (username, password, nonce_text or "", created or "")):
        raise TokenError("a UsernameToken field is too long")
    nonce: bytes | None = None
    if nonce_text is not None:
        try:
            nonce = base64.b64decode(nonce_text, validate=True)
        except (binascii.Error, ValueError):
            raise TokenError("the Nonce is not Base64") from None
    return UsernameToken(username, password, digest, nonce, nonce_text, created)


def password_digest(nonce: bytes, created: str, password: str) -> str:
    """``Base64(SHA1(nonce + created + password))`` (the UsernameToken profile's digest)."""
    raw = hashlib.sha1(nonce + created.encode() + password.encode()).digest()
    return base64.b64encode(raw).decode()


def parse_created(text: str) -> float:
    """``Created`` (xs:dateTime, UTC ``Z`` or with an offset) as epoch seconds."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise TokenError("Created is not a date and time") from None
    if moment.tzinfo is None:
        raise TokenError("Created has no time zone")
    return moment.timestamp()


class NonceCache:
    """Seen ``(Nonce, Created)`` pairs, each kept until its Created leaves the window."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def use(self, key: tuple[str, str], expires: float, now: float) -> bool | None:
        """Remember ``key``; False if it was already there (a replay); None when the cache is
        full of nonces still inside their window (forgetting one would let it be replayed, so
        the token is refused instead)."""
        while self._seen:
            oldest_key, oldest_exp = next(iter(self._seen.items()))
            if oldest_exp > now:
                break
            del self._seen[oldest_key]
        if key in self._seen:
            return False
        if len(self._seen) >= self.max_entries:
            # Created may lie anywhere in the window, so expiry is not quite insertion order.
            self._seen = OrderedDict((k, exp) for k, exp in self._seen.items() if exp > now)
            if len(self._seen) >= self.max_entries:
                return None
        self._seen[key] = expires
        return True


class TokenVerifier:
    """Checks UsernameTokens against the device's accounts (see the module docstring)."""

    def __init__(
        self,
        authenticator: Authenticator,
        *,
        wall_s: Callable[[], float],
        window_s: Callable[[], float],
        cache_size: int,
    ) -> None:
        self._auth = authenticator
        self._wall_s = wall_s
        self._window_s = window_s
        self.nonces = NonceCache(cache_size)
        self._dummy = secrets.token_urlsafe(24)

    def verify(self, token: UsernameToken, remote: str | None) -> User:
        client = client_key(remote)
        if self._auth.throttle.retry_after_ns(client) > 0:
            raise TokenError("too many failed logins; try again later")
        user_key = token.username[:32].lower()
        if self._auth.user_throttle.retry_after_ns(user_key) > 0:
            raise TokenError("too many failed logins; try again later")
        now = self._wall_s()
        window = self._window_s()
        if token.digest and (token.nonce is None or token.created is None):
            raise self._failed(client, user_key, "a PasswordDigest needs Nonce and Created")
        if token.created is not None:
            created = parse_created(token.created)
            if abs(now - created) > window:
                raise self._failed(
                    client, user_key, "Created is outside the accepted window (check the clock)"
                )
        if token.digest:
            assert token.nonce is not None and token.created is not None
            stored = self._auth.users.password_of(token.username)
            expected = password_digest(
                token.nonce, token.created, stored if stored is not None else self._dummy
            )
            good = hmac.compare_digest(expected.encode(), token.password.strip().encode())
            user = self._auth.users.get(token.username) if good and stored is not None else None
            if user is None:
                raise self._failed(client, user_key, "invalid credentials")
        else:
            outcome = self._auth.check_password(
                token.username, token.password, client, remote, "basic"
            )
            if not isinstance(outcome, Authenticated):
                raise TokenError("invalid credentials")
            user = outcome.user
        if token.nonce is not None and token.created is not None:
            expires = parse_created(token.created) + window
            # Keyed on the decoded bytes: one nonce has several Base64 spellings (the unused
            # bits of the last character), and the digest only sees the bytes.
            fresh = self.nonces.use((token.nonce.hex(), token.created), expires, now)
            if fresh is None:
                raise TokenError("too many recent tokens to check for replay; try again later")
            if not fresh:
                raise self._failed(client, user_key, "the Nonce was already used")
        self._auth.throttle.record_success(client)
        self._auth.user_throttle.record_success(user_key)
        return user

    def _failed(self, client: str, user_key: str, message: str) -> TokenError:
        self._auth.throttle.record_failure(client)
        self._auth.user_throttle.record_failure(user_key)
        return TokenError(message)
