"""Encryption of ``type: SECRET`` env values into DigitalOcean's ``EV[1:<nonce>:<ciphertext>]`` form.

Role: turn a plaintext secret into the opaque string every response shows (reference §5.3) and
back again when a deployment needs the real value. Pure computation — no files, no key
management: whoever builds a ``SecretBox`` supplies the installation's 32-byte key.

Encryption is deliberately *deterministic* per (key, scope, plaintext): Terraform and other
clients compare the spec they sent with the one they read back, and a fresh random nonce on
every request would show a perpetual diff. Determinism is made safe by AES-GCM-SIV, which is
nonce-misuse resistant: reusing a nonce reveals only that the same plaintext was encrypted
again, which the deterministic design reveals anyway. The nonce is an HMAC of the scope and
plaintext (under a subkey of the installation key), and the scope (the app id) is also the associated data, so a value copied from one
app's spec into another's does not decrypt there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

from shoal.core.errors import InvalidArgument

KEY_BYTES = 32
NONCE_BYTES = 12
_TAG_BYTES = 16
_B64 = r"[A-Za-z0-9+/]+={0,2}"
_EV_RE = re.compile(rf"^EV\[1:({_B64}):({_B64})\]$")


def is_encrypted(value: str) -> bool:
    """True when ``value`` has the ``EV[1:<b64>:<b64>]`` shape (whether or not this key made it)."""
    return _EV_RE.match(value) is not None


class SecretBox:
    """Encrypts and decrypts secret values with one installation key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"secret key must be {KEY_BYTES} bytes, got {len(key)}")
        # Separate subkeys for the nonce MAC and the cipher, so one key never serves two
        # primitives.
        self._mac_key = hmac.new(key, b"shoal secrets: nonce", hashlib.sha256).digest()
        self._aead = AESGCMSIV(hmac.new(key, b"shoal secrets: cipher", hashlib.sha256).digest())

    def encrypt(self, scope: str, plaintext: str) -> str:
        """``EV[1:...]`` for ``plaintext`` in ``scope`` (the app id); same inputs, same output."""
        data = plaintext.encode("utf-8")
        nonce = self._nonce(scope, data)
        sealed = self._aead.encrypt(nonce, data, scope.encode("utf-8"))
        return f"EV[1:{_b64(nonce)}:{_b64(sealed)}]"

    def decrypt(self, scope: str, value: str) -> str:
        """The plaintext of an ``EV[...]`` this box made for ``scope``; ``InvalidArgument`` otherwise."""
        match = _EV_RE.match(value)
        if match is None:
            raise InvalidArgument("secret value is not a well-formed EV[1:<nonce>:<ciphertext>] string")
        try:
            nonce = base64.b64decode(match.group(1), validate=True)
            sealed = base64.b64decode(match.group(2), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidArgument("secret value is not a well-formed EV[...] string (bad base64)") from exc
        if len(nonce) != NONCE_BYTES or len(sealed) < _TAG_BYTES:
            raise InvalidArgument("secret value was not encrypted by this server (unexpected nonce or ciphertext size)")
        try:
            data = self._aead.decrypt(nonce, sealed, scope.encode("utf-8"))
        except InvalidTag as exc:
            # One message for a wrong key, a wrong app and tampering: telling them apart would
            # help nobody and would leak which of them it was.
            raise InvalidArgument("secret value was not encrypted by this server for this app, "
                                  "or it was altered; send the plaintext value again") from exc
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:  # only reachable with a forged value under our own key
            raise InvalidArgument("secret value does not decrypt to text") from exc

    def _nonce(self, scope: str, data: bytes) -> bytes:
        # The 0x00 separator keeps ("ab", "c") and ("a", "bc") apart; scopes are app ids and
        # never contain NUL.
        message = scope.encode("utf-8") + b"\x00" + data
        return hmac.new(self._mac_key, message, hashlib.sha256).digest()[:NONCE_BYTES]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
