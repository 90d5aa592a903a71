"""Database clusters for production databases: ``databases[].cluster_name`` binds to one of these.

The operator registers them (``shoal cluster add NAME --engine PG --url postgresql://...``); the
URL is sealed at rest like a secret and opened only when a deployment binds to the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit

from shoal.core.clock import Clock
from shoal.core.errors import BadRequest, NotFound
from shoal.core.secrets import SecretBox

ENGINES = ("PG", "MYSQL", "REDIS", "VALKEY", "MONGODB", "KAFKA", "OPENSEARCH")
SCHEMES = {"PG": ("postgresql", "postgres"), "MYSQL": ("mysql",), "REDIS": ("redis", "rediss"),
           "VALKEY": ("redis", "rediss", "valkey"), "MONGODB": ("mongodb", "mongodb+srv"),
           "KAFKA": ("kafka", "kafka+ssl"), "OPENSEARCH": ("https", "http")}
SCOPE = "shoal:clusters"


class ClusterStore(Protocol):
    def add_cluster(self, name: str, engine: str, sealed_url: str, now: datetime) -> None: ...

    def get_cluster(self, name: str) -> tuple[str, str] | None: ...

    def list_clusters(self) -> list[tuple[str, str, str]]: ...

    def remove_cluster(self, name: str) -> bool: ...


@dataclass(frozen=True)
class Cluster:
    name: str
    engine: str
    url: str

    @property
    def safe_url(self) -> str:
        """The URL without its password, for listings."""
        parts = urlsplit(self.url)
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        if parts.username:
            netloc = f"{parts.username}@{netloc}"
        return parts._replace(netloc=netloc).geturl()


class ClustersService:
    def __init__(self, store: ClusterStore, box: SecretBox, clock: Clock) -> None:
        self._store = store
        self._box = box
        self._clock = clock

    def add(self, name: str, engine: str, url: str) -> Cluster:
        engine = engine.upper()
        if engine not in ENGINES:
            raise BadRequest(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES[engine] or not parts.hostname:
            raise BadRequest(f"{engine} cluster URLs look like {SCHEMES[engine][0]}://user:password@host:port/...")
        self._store.add_cluster(name, engine, self._box.encrypt(SCOPE, url), self._clock.now())
        return Cluster(name, engine, url)

    def lookup(self, name: str) -> Cluster | None:
        found = self._store.get_cluster(name)
        return Cluster(name, found[0], self._box.decrypt(SCOPE, found[1])) if found else None

    def list(self) -> list[Cluster]:
        return [Cluster(n, e, self._box.decrypt(SCOPE, u)) for n, e, u in self._store.list_clusters()]

    def remove(self, name: str) -> None:
        if not self._store.remove_cluster(name):
            raise NotFound(f"no cluster named {name!r} is registered")
