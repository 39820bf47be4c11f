"""Browser sessions: an opaque cookie, a CSRF token, idle and absolute expiry.

Sessions live in memory: a restart logs everyone out, as on a camera. Each session remembers
the credential stamp of its user (:meth:`UserStore.credential`) and is checked against it on
every request, so a password change (from the web interface, the API or the ``camio`` CLI in
another process), a role change or a deleted user takes effect at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from camio.core.clock import NS_PER_S
from camio.store.users import User, UserStore

COOKIE = "camio_session"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(slots=True)
class Session:
    """One logged-in browser."""

    user: str
    stamp: str
    csrf_token: str
    created_ns: int
    last_seen_ns: int


class SessionManager:
    """Creates, resolves and ends sessions; bounded (oldest sessions go first)."""

    def __init__(
        self,
        users: UserStore,
        *,
        now_ns: Callable[[], int] = time.monotonic_ns,
        idle_s: float = 30 * 60,
        absolute_s: float = 12 * 3600,
        max_sessions: int = 1024,
    ) -> None:
        self._users = users
        self._now_ns = now_ns
        self.idle_ns = round(idle_s * NS_PER_S)
        self.absolute_ns = round(absolute_s * NS_PER_S)
        self._max = max_sessions
        # Keyed by a hash of the token: a memory dump or a timing side channel on the dict
        # does not hand out live tokens.
        self._sessions: OrderedDict[bytes, Session] = OrderedDict()

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8", "replace")).digest()

    def create(self, user: User) -> tuple[str, Session]:
        """A new session for ``user``; returns the cookie token and the session."""
        credential = self._users.credential(user.name)
        if credential is None:
            raise LookupError(f"no user {user.name!r}")
        token = secrets.token_urlsafe(32)
        now = self._now_ns()
        session = Session(user.name, credential[1], secrets.token_urlsafe(24), now, now)
        self._sessions[self._key(token)] = session
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
        return token, session

    def resolve(self, token: str) -> tuple[Session, User] | None:
        """The live session and its user for a cookie token, or None (and it is forgotten)."""
        key = self._key(token)
        session = self._sessions.get(key)
        if session is None:
            return None
        now = self._now_ns()
        expired = (
            now - session.last_seen_ns > self.idle_ns or now - session.created_ns > self.absolute_ns
        )
        credential = None if expired else self._users.credential(session.user)
        if credential is None or not hmac.compare_digest(credential[1], session.stamp):
            del self._sessions[key]
            return None
        session.last_seen_ns = now
        self._sessions.move_to_end(key)
        return session, credential[0]

    def end(self, token: str) -> None:
        self._sessions.pop(self._key(token), None)

    def end_user(self, name: str) -> None:
        """Log a user out everywhere (their sessions would fail the stamp check anyway)."""
        for key in [k for k, s in self._sessions.items() if s.user == name]:
            del self._sessions[key]

    def __len__(self) -> int:
        return len(self._sessions)


def csrf_ok(session: Session, presented: str | None) -> bool:
    """Constant-time check of the ``X-CSRF-Token`` header against the session's token."""
    return presented is not None and hmac.compare_digest(
        presented.encode("utf-8", "replace"), session.csrf_token.encode()
    )
