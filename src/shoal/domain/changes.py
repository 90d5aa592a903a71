"""What changed: the message every server's caches and deployer hear after a write commits.

One server's own writes reach its subscribers at once, in the writing thread (``local``). With
several servers on one PostgreSQL the other servers hear the same change through the database's
change feed (``local`` false): that is how a cache stays right and how an app's owner learns of a
deployment submitted elsewhere. ``EVERYTHING`` means "changes may have been missed" (the feed
reconnected): drop every cache and look at every app again.
"""

from __future__ import annotations

from dataclasses import dataclass

APP = "app"  # the app or one of its deployments changed (key: the app id)
TOKEN = "token"  # a token was issued or revoked (key: the token id)
EVERYTHING = "all"  # the feed may have missed changes (key: "")


@dataclass(frozen=True)
class Change:
    kind: str
    key: str = ""
    local: bool = True  # written by this server (False: heard from another one)

    def about_app(self, app_id: str) -> bool:
        return self.kind == EVERYTHING or (self.kind == APP and self.key == app_id)
