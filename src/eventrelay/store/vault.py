"""Secret vault: authenticated encryption of integration credentials (Fernet, AES-128-CBC +
HMAC-SHA256, from `cryptography`), with a key ring for rotation.

Keys come from EVENTRELAY_SECRET_KEY (comma-separated, newest first) or from a key file (one key
per line, newest first, mode 0600): EVENTRELAY_SECRET_KEY_FILE, else `<data dir>/secret.key`,
created on first start. Encryption always uses the newest key; decryption tries every key, so
data written under an old key stays readable until `eventrelay secrets rotate` re-encrypts it.

A running process picks up a rotated key file by itself: before encrypting, and when a token
does not decrypt, it reads the file again if it changed (inode, size, mtime). Keys from the
environment cannot change under a running process; `secrets rotate` checks that the running
processes already have the newest key (`fingerprint`) before re-encrypting.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class VaultError(Exception):
    """A secret could not be decrypted with any configured key."""


class Vault:
    def __init__(self, keys: list[bytes], key_file: Path | None = None) -> None:
        """`key_file`: where the keys came from, read again when it changes (None: the keys
        came from the environment and never change)."""
        self._key_file = key_file
        self._stamp = _stamp(key_file)
        self._use(keys)

    def _use(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("the vault needs at least one key")
        self._keys = list(keys)
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    @property
    def key_count(self) -> int:
        return len(self._keys)

    @property
    def fingerprint(self) -> str:
        """Identifies the newest key without revealing it (a truncated SHA-256)."""
        return fingerprint(self._keys[0])

    def refresh(self) -> bool:
        """Read the key file again if it changed; True when the keys changed."""
        if self._key_file is None:
            return False
        stamp = _stamp(self._key_file)
        if stamp == self._stamp:
            return False
        try:
            keys = read_key_file(self._key_file)
        except (OSError, ValueError):
            return False  # unreadable or half-written: keep the keys we have, try again later
        self._stamp = stamp
        if not keys or keys == self._keys:
            return False
        self._use(keys)
        return True

    def derived_keys(self, purpose: str) -> list[bytes]:
        """Keys for another use (signing console access tokens, CSRF tokens), derived from the
        vault's keys with HMAC-SHA256 so every process sharing the key ring agrees on them, newest
        first: sign with the first, accept any (a rotation does not log everyone out)."""
        self.refresh()
        return [hmac.new(k, purpose.encode(), hashlib.sha256).digest() for k in self._keys]

    def encrypt_json(self, value: dict[str, str]) -> str:
        self.refresh()  # a rotation since: encrypt with the newest key
        return self._fernet.encrypt(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).decode()

    def decrypt_json(self, token: str) -> dict[str, str]:
        data = orjson.loads(self._decrypt(token))
        if not isinstance(data, dict):
            raise VaultError("secret payload is not an object")
        return {str(k): str(v) for k, v in data.items()}

    def _decrypt(self, token: str) -> bytes:
        try:
            return self._fernet.decrypt(token.encode())
        except InvalidToken:
            if not self.refresh():
                raise VaultError("secret cannot be decrypted with the configured keys") from None
        try:
            return self._fernet.decrypt(token.encode())
        except InvalidToken:
            raise VaultError("secret cannot be decrypted with the configured keys") from None

    def rotate(self, token: str) -> str:
        """Re-encrypt a token under the newest key (MultiFernet.rotate)."""
        self.refresh()
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise VaultError("secret cannot be decrypted with the configured keys") from exc


def fingerprint(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:12]


def _stamp(path: Path | None) -> tuple[int, int, int] | None:
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def parse_key_list(text: str) -> list[bytes]:
    keys = [part.strip() for part in text.replace("\n", ",").split(",")]
    result = [k.encode() for k in keys if k]
    for key in result:
        Fernet(key)  # validates length and encoding; raises ValueError
    return result


def read_key_file(path: Path) -> list[bytes]:
    return parse_key_list(path.read_text())


def write_key_file(path: Path, keys: list[bytes]) -> None:
    """Write atomically with mode 0600 (never world-readable, even for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(k.decode() for k in keys) + "\n")
    os.replace(tmp, path)


def load_keys(env_value: str | None, key_file: Path, create: bool) -> list[bytes]:
    """Keys from the environment, else the key file (created on first use when `create`)."""
    if env_value:
        return parse_key_list(env_value)
    if key_file.exists():
        return read_key_file(key_file)
    if not create:
        raise FileNotFoundError(
            f"no EVENTRELAY_SECRET_KEY and no key file at {key_file}; run `eventrelay serve` once"
        )
    keys = [Fernet.generate_key()]
    write_key_file(key_file, keys)
    return keys
