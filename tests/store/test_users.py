"""Users, roles and the device key: no default account, validation, last-admin protection,
passwords encrypted at rest, equal work for unknown users."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import FrozenInstanceError
from pathlib import Path
from typing import Any

import pytest

from camio.store.secrets import KEY_FILENAME, SecretBox, SecretError, random_token
from camio.store.users import Role, User, UserError, UserStore, ensure_schema

PASSWORD = "correct horse"


@pytest.fixture
def user_conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(tmp_path / "users.db")
    yield connection
    connection.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def box(data_dir: Path) -> SecretBox:
    return SecretBox(data_dir)


@pytest.fixture
def store(user_conn: sqlite3.Connection, box: SecretBox) -> UserStore:
    return UserStore(user_conn, box, wall_ns=lambda: 1_700_000_000_000_000_000)


class CountingBox(SecretBox):
    """Counts decryptions, to check that unknown users cost the same work as known ones."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self.decrypts = 0

    def decrypt(self, token: str) -> str:
        self.decrypts += 1
        return super().decrypt(token)


# -- SecretBox ----------------------------------------------------------------------------


def test_secret_box_round_trip_and_key_file(data_dir: Path) -> None:
    box = SecretBox(data_dir)
    assert not (data_dir / KEY_FILENAME).exists(), "the key is created on first use only"
    token = box.encrypt("pässwörd")
    assert "pässwörd" not in token
    assert box.decrypt(token) == "pässwörd"
    key_file = data_dir / KEY_FILENAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [p.name for p in data_dir.iterdir()] == [KEY_FILENAME], "no temporary file left"
    # A second box on the same directory uses the same key (the daemon and the CLI).
    assert SecretBox(data_dir).decrypt(token) == "pässwörd"


def test_secret_box_other_key_cannot_decrypt(tmp_path: Path) -> None:
    token = SecretBox(tmp_path / "a").encrypt("hunter2-plaintext")
    with pytest.raises(SecretError) as excinfo:
        SecretBox(tmp_path / "b").decrypt(token)
    assert "hunter2" not in str(excinfo.value)
    assert token not in str(excinfo.value)
    with pytest.raises(SecretError):
        SecretBox(tmp_path / "a").decrypt(token[:-4] + "AAAA")


def test_secret_box_never_overwrites_an_existing_key(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes racing to create the key: the loser adopts the winner's key."""
    winner = SecretBox(data_dir)
    loser = SecretBox(data_dir)
    real_link = os.link
    theirs: list[str] = []

    def racing_link(src: str, dst: str) -> None:
        # Just before the loser links its key in, the winner creates the key file.
        monkeypatch.setattr(os, "link", real_link)
        theirs.append(winner.encrypt("from the winner"))
        real_link(src, dst)

    monkeypatch.setattr(os, "link", racing_link)
    mine = loser.encrypt("from the loser")
    assert winner.decrypt(mine) == "from the loser"
    assert loser.decrypt(theirs[0]) == "from the winner"
    assert [p.name for p in data_dir.iterdir()] == [KEY_FILENAME]


def test_secret_box_tightens_loose_key_permissions(data_dir: Path) -> None:
    SecretBox(data_dir).encrypt("x")
    key_file = data_dir / KEY_FILENAME
    key_file.chmod(0o644)
    SecretBox(data_dir).encrypt("y")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_secret_box_refuses_corrupt_key(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / KEY_FILENAME).write_bytes(b"not a fernet key")
    with pytest.raises(SecretError, match="valid device key"):
        SecretBox(data_dir).encrypt("x")


def test_random_token() -> None:
    tokens = {random_token(32) for _ in range(50)}
    assert len(tokens) == 50
    assert all(len(t) >= 43 for t in tokens)
    assert all(
        set(t) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        for t in tokens
    )
    with pytest.raises(ValueError):
        random_token(0)


# -- roles --------------------------------------------------------------------------------


def test_role_ranks() -> None:
    assert Role.ADMIN.allows(Role.ADMIN)
    assert Role.ADMIN.allows(Role.OPERATOR)
    assert Role.ADMIN.allows(Role.VIEWER)
    assert Role.OPERATOR.allows(Role.VIEWER)
    assert not Role.OPERATOR.allows(Role.ADMIN)
    assert Role.VIEWER.allows(Role.VIEWER)
    assert not Role.VIEWER.allows(Role.OPERATOR)
    assert Role("operator") is Role.OPERATOR
    assert str(Role.VIEWER) == "viewer"


# -- the store ----------------------------------------------------------------------------


def test_no_default_account(store: UserStore) -> None:
    assert store.count() == 0
    assert store.list() == []
    for name, password in [("admin", "admin"), ("root", "pass"), ("admin", ""), ("", "")]:
        assert store.verify(name, password) is None
        assert store.password_of(name) is None
        assert store.get(name) is None


def test_add_get_list(store: UserStore) -> None:
    bob = store.add("bob", PASSWORD, Role.VIEWER)
    alice = store.add("alice", PASSWORD, "admin")
    assert alice == User("alice", Role.ADMIN, 1_700_000_000_000_000_000)
    assert bob.role is Role.VIEWER
    assert store.get("alice") == alice
    assert store.get("ALICE") is None, "lookups are exact"
    assert store.list() == [alice, bob]
    assert store.count() == 2
    assert store.count_admins() == 1
    with pytest.raises(FrozenInstanceError):
        alice.role = Role.VIEWER  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "must not be empty"),
        ("a" * 33, "at most 32"),
        ("has space", "may only contain"),
        ("a:b", "may only contain"),
        ('quo"te', "may only contain"),
        ("émile", "may only contain"),
        ("@local", "may only contain"),
        ("line\nbreak", "may only contain"),
    ],
)
def test_bad_names(store: UserStore, name: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        store.add(name, PASSWORD, Role.VIEWER)
    assert store.count() == 0


def test_name_alphabet_bounds(store: UserStore) -> None:
    store.add("a", PASSWORD, Role.VIEWER)
    store.add("A.b_c-9" + "x" * 25, PASSWORD, Role.VIEWER)
    assert store.count() == 2


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short77", "at least 8"),
        ("x" * 129, "at most 128"),
        ("with\x00nul!", "control characters"),
        ("tab\there!", "control characters"),
    ],
)
def test_bad_passwords(store: UserStore, password: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        store.add("bob", password, Role.VIEWER)
    store.add("bob", PASSWORD, Role.ADMIN)
    with pytest.raises(UserError, match=message):
        store.set_password("bob", password)
    assert store.verify("bob", PASSWORD) is not None


def test_password_length_bounds_inclusive(store: UserStore) -> None:
    store.add("eight", "8" * 8, Role.VIEWER)
    store.add("long", "ü" * 128, Role.VIEWER)
    assert store.verify("eight", "8" * 8) is not None
    assert store.verify("long", "ü" * 128) is not None


def test_duplicates_refused_regardless_of_case(store: UserStore) -> None:
    store.add("alice", PASSWORD, Role.ADMIN)
    with pytest.raises(UserError, match="already exists"):
        store.add("alice", PASSWORD, Role.VIEWER)
    with pytest.raises(UserError, match="'alice' already exists"):
        store.add("Alice", PASSWORD, Role.VIEWER)
    assert store.count() == 1


def test_unknown_role(store: UserStore) -> None:
    with pytest.raises(UserError, match="unknown role 'root'; choose one of: admin, operator"):
        store.add("bob", PASSWORD, "root")
    store.add("bob", PASSWORD, Role.ADMIN)
    with pytest.raises(UserError, match="unknown role"):
        store.set_role("bob", "superuser")


def test_verify(store: UserStore) -> None:
    alice = store.add("alice", PASSWORD, Role.ADMIN)
    assert store.verify("alice", PASSWORD) == alice
    assert store.verify("alice", PASSWORD + "!") is None
    assert store.verify("alice", PASSWORD[:-1]) is None
    assert store.verify("alice", "") is None
    assert store.verify("Alice", PASSWORD) is None
    assert store.verify("nobody", PASSWORD) is None
    assert store.verify("x" * 1000, PASSWORD) is None
    assert store.password_of("alice") == PASSWORD
    assert store.password_of("nobody") is None


def test_unknown_user_costs_the_same_work(
    user_conn: sqlite3.Connection, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A login check costs one scrypt, a Digest lookup one decryption, whoever is asked."""
    box = CountingBox(data_dir)
    store = UserStore(user_conn, box)
    store.add("alice", PASSWORD, Role.ADMIN)
    store.verify("nobody", PASSWORD)  # the dummy hash is made once, on first need
    scrypts = 0
    real_scrypt = hashlib.scrypt

    def counting_scrypt(*args: Any, **kwargs: Any) -> bytes:
        nonlocal scrypts
        scrypts += 1
        return real_scrypt(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counting_scrypt)
    for call in (
        lambda: store.verify("alice", PASSWORD),
        lambda: store.verify("alice", "wrong password"),
        lambda: store.verify("nobody", PASSWORD),
        lambda: store.verify("y" * 500, PASSWORD),
    ):
        before = scrypts
        call()
        assert scrypts - before == 1
    for lookup in (lambda: store.password_of("alice"), lambda: store.password_of("nobody")):
        before = box.decrypts
        lookup()
        assert box.decrypts - before == 1


def test_login_hash_is_scrypt_and_changes_with_the_password(
    store: UserStore, user_conn: sqlite3.Connection
) -> None:
    store.add("alice", PASSWORD, Role.ADMIN)
    (first,) = user_conn.execute("SELECT pw_hash FROM users").fetchone()
    assert first.startswith("scrypt$") and PASSWORD not in first
    stamp = store.credential("alice")
    store.set_password("alice", "another password")
    assert store.credential("alice") != stamp
    assert store.verify("alice", PASSWORD) is None
    assert store.verify("alice", "another password") is not None


def test_a_user_from_before_the_hash_gets_one_at_login(
    store: UserStore, user_conn: sqlite3.Connection
) -> None:
    store.add("alice", PASSWORD, Role.ADMIN)
    with user_conn:
        user_conn.execute("UPDATE users SET pw_hash = NULL")
    assert store.verify("alice", PASSWORD) is not None
    (upgraded,) = user_conn.execute("SELECT pw_hash FROM users").fetchone()
    assert upgraded.startswith("scrypt$")


def test_passwords_encrypted_at_rest(
    store: UserStore, user_conn: sqlite3.Connection, tmp_path: Path
) -> None:
    store.add("alice", PASSWORD, Role.ADMIN)
    (stored,) = user_conn.execute("SELECT password_enc FROM users").fetchone()
    assert PASSWORD not in stored
    # The database alone (e.g. a backup) is useless without the device key.
    with pytest.raises(SecretError):
        SecretBox(tmp_path / "other").decrypt(stored)


def test_persists_across_reopen(tmp_path: Path, data_dir: Path) -> None:
    db = tmp_path / "persist.db"
    first = sqlite3.connect(db)
    UserStore(first, SecretBox(data_dir)).add("alice", PASSWORD, Role.OPERATOR)
    first.close()
    second = sqlite3.connect(db)
    try:
        ensure_schema(second)  # idempotent
        store = UserStore(second, SecretBox(data_dir))
        user = store.verify("alice", PASSWORD)
        assert user is not None and user.role is Role.OPERATOR
    finally:
        second.close()


def test_set_password_and_role(store: UserStore) -> None:
    store.add("alice", PASSWORD, Role.ADMIN)
    store.add("bob", PASSWORD, Role.VIEWER)
    store.set_password("bob", "another one")
    assert store.verify("bob", PASSWORD) is None
    assert store.verify("bob", "another one") is not None
    store.set_role("bob", Role.OPERATOR)
    assert store.get("bob") == User("bob", Role.OPERATOR, 1_700_000_000_000_000_000)
    with pytest.raises(UserError, match="no such user 'carol'"):
        store.set_password("carol", PASSWORD)
    with pytest.raises(UserError, match="no such user 'carol'"):
        store.set_role("carol", Role.VIEWER)
    with pytest.raises(UserError, match="no such user 'carol'"):
        store.delete("carol")


def test_last_admin_cannot_be_deleted_or_demoted(store: UserStore) -> None:
    store.add("alice", PASSWORD, Role.ADMIN)
    store.add("bob", PASSWORD, Role.OPERATOR)
    with pytest.raises(UserError, match="last administrator"):
        store.delete("alice")
    with pytest.raises(UserError, match="last administrator"):
        store.set_role("alice", Role.OPERATOR)
    store.set_role("alice", Role.ADMIN)  # a no-op change is fine
    assert store.get("alice") is not None and store.count_admins() == 1

    store.set_role("bob", Role.ADMIN)
    store.set_role("alice", Role.VIEWER)  # another admin remains
    with pytest.raises(UserError, match="last administrator"):
        store.delete("bob")
    store.set_role("alice", Role.ADMIN)
    store.delete("bob")
    assert [u.name for u in store.list()] == ["alice"]
    store.add("carol", PASSWORD, Role.VIEWER)
    store.delete("carol")  # non-admins can always go
    assert store.count() == 1
