"""Account and token use cases: authenticate a request, bootstrap the admin token, manage tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from shoal.core.clock import Clock
from shoal.core.errors import BadRequest, NotFound, Unauthorized
from shoal.core.ids import hash_token, is_token_shaped, new_token, new_uuid
from shoal.domain.accounts import ADMIN_ACCOUNT, Account, Principal, Token, parse_scopes
from shoal.domain.changes import EVERYTHING, TOKEN, Change
from shoal.domain.ports import AccountStore


AUTH_CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class IssuedToken:
    """A token as shown once, at creation: the secret value is never stored or shown again."""

    value: str
    token: Token
    account: Account


class AccountsService:
    def __init__(self, store: AccountStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._recent: dict[str, tuple[Principal, float]] = {}

    def authenticate(self, token_value: str) -> Principal:
        """The token's principal. A token seen in the last second is not looked up again, so a
        revocation takes effect at once when this server hears of it (``heard``), and within a
        second when it cannot (``shoal token revoke`` on SQLite, another process)."""
        if not is_token_shaped(token_value):
            raise Unauthorized("Unable to authenticate you: the token is not a DigitalOcean-style token (dop_v1_...).")
        token_hash = hash_token(token_value)
        principal = self.recently_authenticated(token_value, token_hash)
        if principal is not None:
            return principal
        principal = self._lookup(token_hash)
        if len(self._recent) > 10_000:
            self._recent.clear()
        self._recent[token_hash] = (principal, self._clock.monotonic())
        return principal

    def heard(self, change: Change) -> None:
        """A token was issued or revoked (here, by another server, or by ``shoal token`` on PostgreSQL):
        nothing checked before it is trusted any more."""
        if change.kind in (TOKEN, EVERYTHING):
            self._recent.clear()

    def recently_authenticated(self, token_value: str, token_hash: str | None = None) -> Principal | None:
        """The principal of a token checked less than a second ago (no I/O: callable on the event loop)."""
        recent = self._recent.get(token_hash or hash_token(token_value))
        if recent is None or self._clock.monotonic() - recent[1] >= AUTH_CACHE_SECONDS:
            return None
        return recent[0] if recent[0].token.is_usable(self._clock.now()) else None

    def _lookup(self, token_hash: str) -> Principal:
        found = self._store.token_by_hash(token_hash)
        if found is None:
            raise Unauthorized("Unable to authenticate you: unknown token.")
        token, account = found
        if token.revoked_at is not None:
            raise Unauthorized("Unable to authenticate you: the token has been revoked.")
        if not token.is_usable(self._clock.now()):
            raise Unauthorized("Unable to authenticate you: the token has expired.")
        return Principal(account=account, token=token)

    def bootstrap_admin(self, preset: str | None) -> IssuedToken | None:
        """On the first start (no tokens at all) issue the admin token; later starts issue nothing."""
        if self._store.count_tokens() > 0:
            return None
        if preset is not None and not is_token_shaped(preset):
            raise BadRequest("SHOAL_BOOTSTRAP_TOKEN must look like dop_v1_ followed by 64 hex digits")
        return self.create_token(account_name=ADMIN_ACCOUNT, scopes=[], name="admin", value=preset)

    def create_token(self, account_name: str, scopes: list[str], name: str | None = None,
                     expires_in: timedelta | None = None, value: str | None = None) -> IssuedToken:
        account = self._store.ensure_account(account_name, f"{account_name}@shoal.local")
        now = self._clock.now()
        token = Token(id=new_uuid(), account_id=account.id, name=name or f"{account_name}-token",
                      scopes=parse_scopes(scopes), created_at=now,
                      expires_at=now + expires_in if expires_in else None)
        secret = value or new_token()
        self._store.insert_token(token, hash_token(secret))
        return IssuedToken(value=secret, token=token, account=account)

    def list_tokens(self) -> list[tuple[Token, Account]]:
        return self._store.list_tokens()

    def revoke_token(self, token_id_prefix: str) -> Token:
        if len(token_id_prefix) < 4:
            raise BadRequest("give at least the first 4 characters of the token id")
        token = self._store.revoke_token(token_id_prefix, self._clock.now())
        if token is None:
            raise NotFound(f"no single token has an id starting with {token_id_prefix!r}")
        return token
