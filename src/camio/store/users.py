"""User accounts and roles, stored in SQLite with passwords encrypted by the device key.

The device has no default account (seed requirement): an empty store authenticates nobody,
and the first administrator is created explicitly (setup code, ``camio user add`` or an
environment variable for automated installs). Passwords are encrypted rather than hashed
because HTTP Digest under several realms and ONVIF WS-Security ``PasswordDigest`` need the
plaintext on the device side; see :mod:`camio.store.secrets` for that trade-off.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import os
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from camio.store.secrets import SecretBox, random_token

__all__ = [
    "NAME_MAX_LEN",
    "PASSWORD_MAX_LEN",
    "PASSWORD_MIN_LEN",
    "Role",
    "User",
    "UserError",
    "UserStore",
    "ensure_schema",
    "validate_name",
    "validate_password",
]

NAME_MAX_LEN = 32
PASSWORD_MIN_LEN = 8
PASSWORD_MAX_LEN = 128

_NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,32}")


class Role(StrEnum):
    """What a user may do. Each role includes everything the roles below it may do.

    * ``admin``: users, configuration, everything else;
    * ``operator``: drive outputs and manual triggers, acknowledge events;
    * ``viewer``: read only.
    """

    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        """Higher is more privileged; only comparisons between ranks are meaningful."""
        return _RANKS[self]

    def allows(self, required: Role) -> bool:
        """True if a user with this role may do what needs ``required``."""
        return self.rank >= required.rank


_RANKS: dict[Role, int] = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class User:
    """A user as the rest of camio sees it: never carries the password."""

    name: str
    role: Role
    created_wall_ns: int


class UserError(ValueError):
    """A user operation was refused; the message is meant for the person who asked."""


_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS users (
        name TEXT PRIMARY KEY NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
        password_enc TEXT NOT NULL,
        created_wall_ns INTEGER NOT NULL
    )
    """,
    # Lookups stay exact (binary), but two names differing only by case cannot coexist.
    "CREATE UNIQUE INDEX IF NOT EXISTS users_name_nocase ON users (name COLLATE NOCASE)",
)


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the ``users`` table and its index if they do not exist yet (idempotent).

    Databases made before the login hash existed get the ``pw_hash`` column here; their
    users get a hash at their next successful login (:meth:`UserStore.verify`).
    """
    with conn:
        for statement in _SCHEMA:
            conn.execute(statement)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(users)")}
        if "pw_hash" not in columns:
            conn.execute("ALTER TABLE users ADD COLUMN pw_hash TEXT")


# scrypt (RFC 7914) with N=2^14, r=8, p=1: about 16 MiB and tens of milliseconds per check,
# the interactive-login parameters. OpenSSL allocates the 16 MiB with mmap, so it goes back
# to the system after each check instead of growing the idle daemon.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 1 << 14, 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A scrypt hash for login checks: ``scrypt$N$r$p$salt$hash`` (base64 parts)."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=_SCRYPT_N,
        r=_SCRYPT_R,
        p=_SCRYPT_P,
        maxmem=_SCRYPT_MAXMEM,
        dklen=32,
    )
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def check_password_hash(encoded: str, password: str) -> bool:
    """Whether ``password`` matches a :func:`hash_password` string (constant-time)."""
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_SCRYPT_MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def validate_name(name: str) -> None:
    """Refuse names that would be ambiguous or unsafe in the protocols that carry them.

    The alphabet excludes ``:`` (Basic auth separator), quotes and backslashes (Digest
    quoted-strings), spaces and non-ASCII (clients disagree on their encoding).
    """
    if not isinstance(name, str) or not name:
        raise UserError("user name must not be empty")
    if len(name) > NAME_MAX_LEN:
        raise UserError(f"user name must be at most {NAME_MAX_LEN} characters")
    if _NAME_RE.fullmatch(name) is None:
        raise UserError("user name may only contain letters A-Z a-z, digits 0-9, '.', '_' and '-'")


def validate_password(password: str) -> None:
    """Enforce the length bounds, and refuse control characters no client can type."""
    if not isinstance(password, str):
        raise UserError("password must be a string")
    if len(password) < PASSWORD_MIN_LEN:
        raise UserError(f"password must be at least {PASSWORD_MIN_LEN} characters")
    if len(password) > PASSWORD_MAX_LEN:
        raise UserError(f"password must be at most {PASSWORD_MAX_LEN} characters")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in password):
        raise UserError("password must not contain control characters")


def _coerce_role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise UserError(f"unknown role {role!r}; choose one of: {choices}") from None


def _digest(text: str) -> bytes:
    # Comparing fixed-size digests keeps the comparison constant-time even when the lengths
    # of the two passwords differ (compare_digest only hides *where* equal-length inputs differ).
    return hashlib.sha256(text.encode("utf-8")).digest()


class UserStore:
    """CRUD for users, plus the two questions authentication asks.

    * :meth:`verify` (Basic auth, web login): is this the right password?
    * :meth:`password_of` (Digest, WS-Security): what is the password, so that I can compute
      what the client should have sent?

    Both do the same work (one row lookup and one decryption) whether or not the user exists,
    so response time does not tell an attacker which names are valid.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        box: SecretBox,
        *,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._conn = conn
        self._box = box
        self._wall_ns = wall_ns
        ensure_schema(conn)
        # Decrypted in place of a real password for unknown users (equal work, see above).
        self._dummy_enc = box.encrypt(random_token(24))
        self._dummy_pw_hash: str | None = None

    # -- writes ---------------------------------------------------------------------------

    def add(self, name: str, password: str, role: Role | str) -> User:
        """Create a user. Names are unique regardless of case, so ``Admin`` cannot shadow
        ``admin`` in a log or a drop-down list."""
        validate_name(name)
        validate_password(password)
        role = _coerce_role(role)
        user = User(name=name, role=role, created_wall_ns=self._wall_ns())
        enc = self._box.encrypt(password)
        pw_hash = hash_password(password)
        try:
            with self._conn:
                clash = self._conn.execute(
                    "SELECT name FROM users WHERE name = ? COLLATE NOCASE", (name,)
                ).fetchone()
                if clash is not None:
                    raise UserError(f"user {clash[0]!r} already exists")
                self._conn.execute(
                    "INSERT INTO users (name, role, password_enc, created_wall_ns, pw_hash)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (name, role.value, enc, user.created_wall_ns, pw_hash),
                )
        except sqlite3.IntegrityError:
            raise UserError(f"user {name!r} already exists") from None
        return user

    def delete(self, name: str) -> None:
        """Delete a user, unless it is the last administrator (the device would be locked)."""
        with self._conn:
            # One statement, so a concurrent delete (CLI and daemon) cannot both pass the
            # "another admin remains" check.
            cur = self._conn.execute(
                "DELETE FROM users WHERE name = ? AND (role != 'admin'"
                " OR (SELECT COUNT(*) FROM users WHERE role = 'admin') > 1)",
                (name,),
            )
        if cur.rowcount == 0:
            self._explain_refusal(name, "delete")

    def set_password(self, name: str, password: str) -> None:
        """Replace a user's password."""
        validate_password(password)
        enc = self._box.encrypt(password)
        pw_hash = hash_password(password)
        with self._conn:
            cur = self._conn.execute(
                "UPDATE users SET password_enc = ?, pw_hash = ? WHERE name = ?",
                (enc, pw_hash, name),
            )
        if cur.rowcount == 0:
            raise UserError(f"no such user {name!r}")

    def set_role(self, name: str, role: Role | str) -> None:
        """Change a user's role, unless that demotes the last administrator."""
        role = _coerce_role(role)
        with self._conn:
            cur = self._conn.execute(
                "UPDATE users SET role = ? WHERE name = ? AND (role != 'admin' OR ? = 'admin'"
                " OR (SELECT COUNT(*) FROM users WHERE role = 'admin') > 1)",
                (role.value, name, role.value),
            )
        if cur.rowcount == 0:
            self._explain_refusal(name, "demote")

    def _explain_refusal(self, name: str, verb: str) -> None:
        if self.get(name) is None:
            raise UserError(f"no such user {name!r}")
        raise UserError(
            f"cannot {verb} {name!r}: it is the last administrator; create another "
            "administrator first"
        )

    # -- reads ----------------------------------------------------------------------------

    def get(self, name: str) -> User | None:
        """The user called exactly ``name``, or None."""
        row = self._conn.execute(
            "SELECT name, role, created_wall_ns FROM users WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else User(row[0], Role(row[1]), row[2])

    def list(self) -> builtins.list[User]:
        """All users, sorted by name."""
        rows = self._conn.execute(
            "SELECT name, role, created_wall_ns FROM users ORDER BY name"
        ).fetchall()
        return [User(r[0], Role(r[1]), r[2]) for r in rows]

    def count(self) -> int:
        """Number of users; 0 means the device still needs its first administrator."""
        row = self._conn.execute("SELECT COUNT(*) FROM users").fetchone()
        return int(row[0])

    def count_admins(self) -> int:
        """Number of administrators (never 0 once the first one exists)."""
        row = self._conn.execute("SELECT COUNT(*) FROM users WHERE role = 'admin'").fetchone()
        return int(row[0])

    # -- authentication -------------------------------------------------------------------

    def _lookup(self, name: str) -> tuple[User | None, str]:
        """The user (or None) and their decrypted password (or a dummy one).

        Always decrypts exactly once, so known and unknown names cost the same.
        """
        row = None
        if isinstance(name, str) and len(name) <= NAME_MAX_LEN:
            row = self._conn.execute(
                "SELECT name, role, created_wall_ns, password_enc FROM users WHERE name = ?",
                (name,),
            ).fetchone()
        if row is None:
            self._box.decrypt(self._dummy_enc)
            return None, ""
        return User(row[0], Role(row[1]), row[2]), self._box.decrypt(row[3])

    def verify(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs, else None (wrong password or unknown user).

        Checked against the scrypt hash (a strong, slow hash: this is the login check); an
        unknown name costs one scrypt too, so timing does not reveal which names exist. A user
        from before the hash existed is checked against the stored secret once and gets a
        hash on success.
        """
        candidate = password if isinstance(password, str) else ""
        row = None
        if isinstance(name, str) and len(name) <= NAME_MAX_LEN:
            row = self._conn.execute(
                "SELECT name, role, created_wall_ns, password_enc, pw_hash FROM users"
                " WHERE name = ?",
                (name,),
            ).fetchone()
        if row is None:
            check_password_hash(self._dummy_hash(), candidate)
            return None
        user = User(row[0], Role(row[1]), row[2])
        if row[4]:
            return user if check_password_hash(row[4], candidate) else None
        stored = self._box.decrypt(row[3])
        if not hmac.compare_digest(_digest(stored), _digest(candidate)):
            return None
        with self._conn:
            self._conn.execute(
                "UPDATE users SET pw_hash = ? WHERE name = ? AND pw_hash IS NULL",
                (hash_password(candidate), user.name),
            )
        return user

    def _dummy_hash(self) -> str:
        if self._dummy_pw_hash is None:
            self._dummy_pw_hash = hash_password(random_token(24))
        return self._dummy_pw_hash

    def credential(self, name: str) -> tuple[User, str] | None:
        """The user and a stamp of their current credentials (one cheap lookup).

        The stamp changes whenever the password does, from this process or another (the
        CLI): sessions and the login cache compare it on every request, so changing a
        password ends every session and cached login at once.
        """
        if not isinstance(name, str) or len(name) > NAME_MAX_LEN:
            return None
        row = self._conn.execute(
            "SELECT name, role, created_wall_ns, password_enc, pw_hash FROM users WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            return None
        stamp = row[4] or hashlib.sha256(row[3].encode()).hexdigest()
        return User(row[0], Role(row[1]), row[2]), stamp

    def password_of(self, name: str) -> str | None:
        """The plaintext password, for Digest and WS-Security verification; None if unknown.

        Callers must compare in constant time and must never log or return it.
        """
        user, stored = self._lookup(name)
        return stored if user is not None else None
