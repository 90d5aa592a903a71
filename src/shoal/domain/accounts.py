"""Accounts, tokens and scopes.

A token belongs to one account and carries scopes. ``*`` is full access; ``app:read`` etc. are
DigitalOcean's custom scopes for the Apps API; ``read`` grants every ``:read`` scope.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from shoal.core.errors import BadRequest, Forbidden

FULL_ACCESS = "*"
APP_SCOPES = ("app:read", "app:create", "app:update", "app:delete")
KNOWN_SCOPES = frozenset({FULL_ACCESS, "read", *APP_SCOPES, "app:access_console", "account:read",
                          "monitoring:read"})
ADMIN_ACCOUNT = "admin"


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    email: str
    created_at: datetime

    @property
    def team_uuid(self) -> str:
        # Every account is its own team; a stable id derived from the account keeps clients that
        # read ``team.uuid`` happy without a separate table.
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"shoal:team:{self.id}"))

    @property
    def default_project_id(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"shoal:project:{self.id}"))


@dataclass(frozen=True)
class Token:
    id: str
    account_id: str
    name: str
    scopes: frozenset[str]
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def is_usable(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True)
class Principal:
    """Who is making a request: the account and what its token may do."""

    account: Account
    token: Token

    def require(self, scope: str) -> None:
        if not allows(self.token.scopes, scope):
            raise Forbidden(f"You do not have access for the attempted action: this token lacks the {scope!r} scope.")


def allows(granted: frozenset[str], needed: str) -> bool:
    if FULL_ACCESS in granted or needed in granted:
        return True
    return needed.endswith(":read") and "read" in granted


def parse_scopes(values: list[str]) -> frozenset[str]:
    scopes = frozenset(v.strip() for v in values if v.strip()) or frozenset({FULL_ACCESS})
    unknown = sorted(scopes - KNOWN_SCOPES)
    if unknown:
        raise BadRequest(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_SCOPES))}")
    return scopes
