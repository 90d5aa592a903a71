"""Identifiers: UUIDs for resources, DigitalOcean-shaped tokens, and app hostnames."""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import uuid
from typing import NewType

AppId = NewType("AppId", str)
AccountId = NewType("AccountId", str)
TokenId = NewType("TokenId", str)
DeploymentId = NewType("DeploymentId", str)

TOKEN_PREFIX = "dop_v1_"
_TOKEN_RE = re.compile(r"^do[por]_v1_[0-9a-f]{64}$")
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits


def new_uuid() -> str:
    return str(uuid.uuid4())


def is_uuid(value: str) -> bool:
    return bool(_UUID_RE.match(value.lower()))


def new_token() -> str:
    """A personal access token shaped like DigitalOcean's: ``dop_v1_`` + 64 hex digits."""
    return TOKEN_PREFIX + secrets.token_hex(32)


def is_token_shaped(value: str) -> bool:
    return bool(_TOKEN_RE.match(value))


def hash_token(token: str) -> str:
    # Tokens carry 256 bits of entropy, so a fast hash is enough (no password stretching needed)
    # and lets every request be authenticated with one indexed lookup.
    return hashlib.sha256(token.encode()).hexdigest()


def ingress_suffix() -> str:
    """The five lowercase alphanumerics DigitalOcean appends to an app's default hostname."""
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))
