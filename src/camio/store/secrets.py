"""The device key, and what it protects: stored passwords and other secrets at rest.

Why passwords are *encrypted*, not hashed
-----------------------------------------
A password hash (bcrypt, scrypt, argon2) is the right thing for a web site, but a camera has to
speak protocols that prove knowledge of the password without sending it, and those protocols
need the plaintext (or a realm-bound derivative of it) on the device side:

* HTTP Digest (RFC 7616) needs ``H(username:realm:password)``. A hash stored per realm would
  work for one realm, but camio answers under several realms (one per camera dialect, and the
  dialects' clients expect the vendor's realm) and with two algorithms (MD5, SHA-256).
* ONVIF WS-Security ``PasswordDigest`` is ``Base64(SHA1(nonce + created + password))`` with a
  client-chosen nonce, so nothing short of the plaintext lets the device check it.

So camio does what cameras do: it keeps each password encrypted with a per-device key
(:class:`SecretBox`) in a file only the daemon's user can
read. The trade-off is explicit: whoever can read both the database *and* ``secret.key`` gets
every password back, where a hash would only allow an offline guessing attack. What it still
buys: a copied database or backup without the key file reveals nothing, and the key never
leaves ``<data_dir>`` (mode ``0600``). Users should not reuse their camera password elsewhere;
the documentation says so.

The cipher is built from the standard library alone: HMAC-SHA256 as a PRF in counter mode for
the keystream, and encrypt-then-MAC with HMAC-SHA256 over version, nonce and ciphertext, with
separate keys derived from the device key. Both constructions are textbook (CTR over a PRF is
IND-CPA secure, EtM with a PRF tag gives authenticated encryption). It replaced Fernet because
loading the ``cryptography`` package for this alone cost 6.5 MB of resident memory on an
idle device whose budget is 60 MB; ``cryptography`` stays for what needs it (certificates).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import stat
import tempfile
import threading
from pathlib import Path

__all__ = ["KEY_FILENAME", "SecretBox", "SecretError", "random_token"]

KEY_FILENAME = "secret.key"
_KEY_BYTES = 32
_NONCE_BYTES = 16
_TAG_BYTES = 32
_VERSION = b"\x01"


class _Cipher:
    """Authenticated encryption of short secrets with HMAC-SHA256 (CTR keystream + EtM tag)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_BYTES:
            raise ValueError("the device key must be 32 bytes")
        self._enc = hmac.new(key, b"camio secretbox encryption", hashlib.sha256).digest()
        self._mac = hmac.new(key, b"camio secretbox authentication", hashlib.sha256).digest()

    def _keystream(self, nonce: bytes, length: int) -> bytes:
        blocks = []
        for counter in range((length + 31) // 32):
            block = nonce + counter.to_bytes(4, "big")
            blocks.append(hmac.new(self._enc, block, hashlib.sha256).digest())
        return b"".join(blocks)[:length]

    def _tag(self, nonce: bytes, ciphertext: bytes) -> bytes:
        return hmac.new(self._mac, _VERSION + nonce + ciphertext, hashlib.sha256).digest()

    def encrypt(self, plaintext: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        stream = self._keystream(nonce, len(plaintext))
        ciphertext = bytes(a ^ b for a, b in zip(plaintext, stream, strict=True))
        return _VERSION + nonce + ciphertext + self._tag(nonce, ciphertext)

    def decrypt(self, token: bytes) -> bytes:
        if len(token) < 1 + _NONCE_BYTES + _TAG_BYTES or token[:1] != _VERSION:
            raise ValueError("not a secretbox token")
        nonce = token[1 : 1 + _NONCE_BYTES]
        ciphertext = token[1 + _NONCE_BYTES : -_TAG_BYTES]
        if not hmac.compare_digest(token[-_TAG_BYTES:], self._tag(nonce, ciphertext)):
            raise ValueError("authentication failed")
        stream = self._keystream(nonce, len(ciphertext))
        return bytes(a ^ b for a, b in zip(ciphertext, stream, strict=True))


def _decode_key(text: bytes) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text)
    except (ValueError, TypeError) as exc:
        raise ValueError("not base64") from exc
    if len(key) != _KEY_BYTES:
        raise ValueError("wrong key length")
    return key


class SecretError(Exception):
    """A secret could not be decrypted, or the key file is unusable.

    The message never contains key material or plaintext, so it is safe to log.
    """


def random_token(nbytes: int = 32) -> str:
    """Return a URL-safe random string carrying ``nbytes`` bytes of entropy.

    Used for session ids, CSRF tokens, the local CLI token and setup codes: anything a client
    must present but cannot guess. ``secrets`` reads the OS CSPRNG. Use at least 16 bytes
    (128 bits) for anything that is not also rate-limited.
    """
    if nbytes < 1:
        raise ValueError("nbytes must be positive")
    return secrets.token_urlsafe(nbytes)


class SecretBox:
    """Symmetric encryption with the device key kept in ``<data_dir>/secret.key``.

    The key is created lazily on first use, so merely constructing a box (e.g. for ``camio
    --help``) does not touch the disk. Creation is atomic and never overwrites: a key file that
    exists is always the one in use, because replacing it would make every stored password
    undecryptable. If the daemon and the ``camio`` CLI race to create it, one wins and the other
    adopts the winner's key.
    """

    def __init__(self, data_dir: Path | str) -> None:
        self._data_dir = Path(data_dir)
        self._cipher: _Cipher | None = None
        self._lock = threading.Lock()

    @property
    def key_path(self) -> Path:
        """Where the device key lives (it may not exist yet)."""
        return self._data_dir / KEY_FILENAME

    def encrypt(self, plaintext: str) -> str:
        """Encrypt ``plaintext`` (UTF-8) into an ASCII token safe to store in a text column."""
        token = self._get_cipher().encrypt(plaintext.encode("utf-8"))
        return base64.urlsafe_b64encode(token).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Decrypt a token made by :meth:`encrypt` with the same device key.

        Raises :class:`SecretError` if the token was altered or made with another key (e.g. a
        database restored onto a device whose key file was regenerated).
        """
        try:
            data = self._get_cipher().decrypt(base64.urlsafe_b64decode(token.encode("ascii")))
        except (ValueError, TypeError, UnicodeEncodeError) as exc:
            raise SecretError(
                f"cannot decrypt a stored secret: it was altered or encrypted with another "
                f"device key than {self.key_path}"
            ) from exc
        return data.decode("utf-8")

    # -- key file -------------------------------------------------------------------------

    def _get_cipher(self) -> _Cipher:
        cipher = self._cipher
        if cipher is None:
            with self._lock:
                if self._cipher is None:
                    self._cipher = _Cipher(_decode_key(self._load_or_create_key()))
                cipher = self._cipher
        return cipher

    def _load_or_create_key(self) -> bytes:
        path = self.key_path
        try:
            return self._read_key(path)
        except FileNotFoundError:
            pass
        self._data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self._create_key(path)

    @staticmethod
    def _read_key(path: Path) -> bytes:
        with path.open("rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                # Someone copied the key in with a loose umask: tighten it rather than keep
                # serving from a key other local users can read.
                with contextlib.suppress(OSError):
                    os.fchmod(handle.fileno(), 0o600)
            key = handle.read().strip()
        try:
            _decode_key(key)
        except ValueError as exc:
            raise SecretError(f"{path} does not hold a valid device key") from exc
        return key

    def _create_key(self, path: Path) -> bytes:
        """Write a new key atomically, without ever replacing an existing key file.

        Write a temporary file (``mkstemp`` creates it ``0600``), ``fsync`` it, then hard-link
        it to the final name: ``link`` is atomic like ``rename`` but fails if the name exists,
        which is what makes the no-overwrite promise hold across processes. On file systems
        without hard links, ``os.replace`` is the fallback (atomic, but last writer wins).
        """
        key = base64.urlsafe_b64encode(secrets.token_bytes(_KEY_BYTES))
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(key + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp_name, path)
            except FileExistsError:
                # Another process created the key first: theirs is the device key.
                return self._read_key(path)
            except OSError:
                os.replace(tmp_name, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
        _fsync_directory(path.parent)
        return key


def _fsync_directory(directory: Path) -> None:
    """Make the new directory entry durable, so a power cut cannot lose the key just created."""
    dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        with contextlib.suppress(OSError):  # some file systems refuse to fsync a directory
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
