"""Accounts and tokens in SQL. Tokens are stored only as their hash."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shoal.core.clock import SystemClock
from shoal.core.ids import new_uuid
from shoal.domain.accounts import Account, Token
from shoal.domain.changes import TOKEN, Change
from shoal.store.changes import ChangeFeed
from shoal.store.tables import accounts, tokens


def _account(row: Any) -> Account:
    return Account(id=row.id, name=row.name, email=row.email, created_at=row.created_at)


def _token(row: Any) -> Token:
    return Token(id=row.id, account_id=row.account_id, name=row.name, scopes=frozenset(row.scopes),
                 created_at=row.created_at, expires_at=row.expires_at, revoked_at=row.revoked_at)


_TOKEN_COLUMNS = [tokens.c.id, tokens.c.account_id, tokens.c.name, tokens.c.scopes, tokens.c.created_at,
                  tokens.c.expires_at, tokens.c.revoked_at]
_ACCOUNT_COLUMNS = [accounts.c.id.label("a_id"), accounts.c.name.label("a_name"), accounts.c.email,
                    accounts.c.created_at.label("a_created_at")]


def _pair(row: Any) -> tuple[Token, Account]:
    account = Account(id=row.a_id, name=row.a_name, email=row.email, created_at=row.a_created_at)
    return _token(row), account


class SqlAccountStore:
    def __init__(self, engine: Engine, changes: ChangeFeed) -> None:
        self._engine = engine
        self._changes = changes

    def ensure_account(self, name: str, email: str) -> Account:
        with self._engine.begin() as conn:
            row = conn.execute(sa.select(accounts).where(accounts.c.name == name)).first()
            if row is not None:
                return _account(row)
            account = Account(id=new_uuid(), name=name, email=email, created_at=SystemClock().now())
            conn.execute(accounts.insert().values(id=account.id, name=account.name, email=account.email,
                                                  created_at=account.created_at))
            return account

    def insert_token(self, token: Token, token_hash: str) -> None:
        with self._changes.changing(self._engine, TOKEN, token.id) as conn:
            conn.execute(tokens.insert().values(
                id=token.id, account_id=token.account_id, name=token.name, token_hash=token_hash,
                scopes=sorted(token.scopes), created_at=token.created_at, expires_at=token.expires_at,
                revoked_at=token.revoked_at))

    def token_by_hash(self, token_hash: str) -> tuple[Token, Account] | None:
        query = (sa.select(*_TOKEN_COLUMNS, *_ACCOUNT_COLUMNS)
                 .join_from(tokens, accounts, tokens.c.account_id == accounts.c.id)
                 .where(tokens.c.token_hash == token_hash))
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return _pair(row) if row else None

    def list_tokens(self) -> list[tuple[Token, Account]]:
        query = (sa.select(*_TOKEN_COLUMNS, *_ACCOUNT_COLUMNS)
                 .join_from(tokens, accounts, tokens.c.account_id == accounts.c.id)
                 .order_by(tokens.c.created_at, tokens.c.id))
        with self._engine.connect() as conn:
            return [_pair(row) for row in conn.execute(query)]

    def revoke_token(self, token_id_prefix: str, when: datetime) -> Token | None:
        """Revoke the one token whose id starts with the prefix; None if none or several match."""
        with self._engine.begin() as conn:
            rows = conn.execute(sa.select(tokens).where(tokens.c.id.startswith(token_id_prefix, autoescape=True))).all()
            if len(rows) != 1:
                return None
            conn.execute(tokens.update().where(tokens.c.id == rows[0].id, tokens.c.revoked_at.is_(None))
                         .values(revoked_at=when))
            row = conn.execute(sa.select(tokens).where(tokens.c.id == rows[0].id)).one()
            self._changes.announce(conn, TOKEN, row.id)
        self._changes.deliver(Change(TOKEN, row.id))
        return _token(row)

    def count_tokens(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(tokens)).scalar_one())
