"""Password hashing for dashboard accounts: scrypt from the standard library.

Stored as ``scrypt$N$r$p$salt$hash`` (base64), so the cost can be raised
later and old hashes still verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# About 16 MiB and tens of milliseconds per hash: slow for a guesser, quick
# enough for a login.
N, R, P = 2**14, 8, 1
MIN_LENGTH = 8


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise ValueError(f"a password needs at least {MIN_LENGTH} characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=N, r=R, p=P, dklen=32)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n),
                             r=int(r), p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


#: Verified against when the account does not exist, so a login for an
#: unknown name takes as long as one for a known name.
DUMMY_HASH = hash_password("not-a-real-password")
