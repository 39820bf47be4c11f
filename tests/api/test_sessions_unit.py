"""Session expiry and per-account throttling, under an injected clock (no sleeps)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from camio.api.auth import Authenticated, Authenticator, Throttled, Unauthorized
from camio.api.sessions import SessionManager, csrf_ok
from camio.core.clock import NS_PER_S
from camio.store.secrets import SecretBox
from camio.store.users import Role, UserStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000 * NS_PER_S

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * NS_PER_S)


@pytest.fixture
def users(tmp_path: Path) -> UserStore:
    store = UserStore(sqlite3.connect(tmp_path / "u.db"), SecretBox(tmp_path))
    store.add("alice", "alice password", Role.OPERATOR)
    store.add("bob", "bob password", Role.VIEWER)
    return store


def test_sessions_expire_when_idle_and_absolutely(users: UserStore) -> None:
    clock = Clock()
    sessions = SessionManager(users, now_ns=clock, idle_s=60, absolute_s=300)
    user = users.get("alice")
    assert user is not None
    token, session = sessions.create(user)
    for _ in range(4):  # activity keeps it alive past the idle limit...
        clock.advance(59)
        assert sessions.resolve(token) is not None
    clock.advance(61)  # ...idle for longer than the limit ends it
    assert sessions.resolve(token) is None
    token, _ = sessions.create(user)
    for _ in range(5):
        clock.advance(59)
        resolved = sessions.resolve(token)
    assert resolved is not None
    clock.advance(59)  # 354 s after creation: past the absolute limit despite activity
    assert sessions.resolve(token) is None
    assert csrf_ok(session, session.csrf_token) and not csrf_ok(session, "guess")
    assert not csrf_ok(session, None)


def test_a_role_change_takes_effect_on_the_next_request(users: UserStore) -> None:
    sessions = SessionManager(users)
    alice = users.get("alice")
    assert alice is not None
    token, _ = sessions.create(alice)
    users.set_role("alice", Role.VIEWER)
    resolved = sessions.resolve(token)
    assert resolved is not None and resolved[1].role is Role.VIEWER
    users.delete("alice")
    assert sessions.resolve(token) is None


def test_an_account_is_throttled_whichever_client_guesses(users: UserStore) -> None:
    clock = Clock()
    auth = Authenticator(users, "camio", now_ns=clock)
    for n in range(10):  # ten clients, one wrong guess each: no client reaches its limit
        outcome = auth.login("alice", "wrong", f"10.0.{n}.1")
        assert isinstance(outcome, Unauthorized)
    throttled = auth.login("alice", "alice password", "10.0.99.1")
    assert isinstance(throttled, Throttled) and throttled.retry_after_s > 0
    assert isinstance(auth.login("bob", "bob password", "10.0.99.1"), Authenticated)
    clock.advance(throttled.retry_after_s + 1)
    assert isinstance(auth.login("alice", "alice password", "10.0.99.1"), Authenticated)
