"""App use cases, named after DigitalOcean's operations: create, get, list, update, delete, propose.

Create and update write the app and the deployment they cause in one transaction, then hand the
deployment to the deployer.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from typing import Any

from shoal.core.clock import Clock
from shoal.core.secrets import SecretBox
from shoal.core.errors import BadRequest, Conflict, NotFound
from shoal.core.ids import ingress_suffix, is_uuid, new_uuid
from shoal.domain.accounts import Account
from shoal.domain.apps import App, AppView
from shoal.domain.changes import APP, EVERYTHING, Change
from shoal.domain.deployments import IN_PROGRESS, Phase, Trigger
from shoal.domain.ports import AppStore, DeploymentQueue, DeploymentStore, NullQueue, SourcePolicy
from shoal.engine.new_deployments import new_deployment
from shoal.spec import Problem, SpecInvalid, app_cost, check, diff
from shoal.spec.catalog import DEFAULT_INSTANCE_SIZE, INSTANCE_SIZES_BY_SLUG
from shoal.spec.defaults import resolve_region
from shoal.spec.rules.envs import reference_warnings
from shoal.spec.sealing import foreign_secrets, seal

_COMPUTE_KINDS = ("services", "workers", "jobs")
VIEW_CACHE_SIZE = 20_000


@dataclass(frozen=True)
class Proposal:
    spec: dict[str, Any]
    app_name_available: bool
    app_name_suggestion: str | None
    app_is_static: bool
    existing_static_apps: int
    app_cost: int
    warnings: list[str]


def tier_of(spec: dict[str, Any]) -> str:
    """The legacy tier an app falls in: starter when static only, else the highest size tier it uses."""
    sizes = [c.get("instance_size_slug") or DEFAULT_INSTANCE_SIZE for kind in _COMPUTE_KINDS for c in spec.get(kind) or []]
    if not sizes:
        return "starter"
    tiers = {INSTANCE_SIZES_BY_SLUG[s].tier_slug for s in sizes if s in INSTANCE_SIZES_BY_SLUG}
    return "professional" if "professional" in tiers else "basic"


def is_static(spec: dict[str, Any]) -> bool:
    return bool(spec.get("static_sites")) and not any(spec.get(k) for k in (*_COMPUTE_KINDS, "functions"))


SERVED_PG_MAJOR = "16"  # the embedded PostgreSQL (pgserver) that serves dev databases


def database_warnings(spec: dict[str, Any]) -> list[str]:
    """Dev databases shoal will serve with another major version than asked (never a refusal)."""
    return [f"databases {d['name']}: PostgreSQL {d['version']} was requested; shoal's dev databases are served "
            f"by PostgreSQL {SERVED_PG_MAJOR}" for d in spec.get("databases") or []
            if not d.get("production") and d.get("version") and str(d["version"]).split(".")[0] != SERVED_PG_MAJOR]


def refuse_if_pinned(app: App) -> None:
    if app.pinned_deployment_id:
        raise Conflict(f"app {app.id} is pinned to deployment {app.pinned_deployment_id} by a rollback; "
                       "commit or revert the rollback before deploying again")


class AppsService:
    def __init__(self, store: AppStore, deployments: DeploymentStore, clock: Clock, apps_domain: str,
                 queue: DeploymentQueue | None = None, box: SecretBox | None = None,
                 sources: SourcePolicy | None = None) -> None:
        self._store = store
        self._box = box
        self._sources = sources
        self._deployments = deployments
        self._clock = clock
        self._apps_domain = apps_domain
        self.queue: DeploymentQueue = queue or NullQueue()
        # Assembled views by app id, dropped when the store reports a change of the app or its
        # deployments (``forget``); a cached read touches no database.
        self._views: dict[str, AppView] = {}
        self._epoch = 0  # counts reported changes
        self._changed_at: dict[str, int] = {}  # app → epoch of its last reported change
        self._floor = 0  # views read before this epoch are never cached (changes may have been missed)
        self._lock = threading.Lock()  # changes are reported from writers' threads and the change feed's

    def _checked(self, account: Account, raw_spec: object) -> dict[str, Any]:
        """The normalised spec with its secrets sealed (scoped to the account, so a spec read back
        from any of its apps, or from propose, is accepted again as it is)."""
        spec = check(raw_spec)
        if self._sources is not None:
            refused = [Problem(path, why) for path, url in _clone_urls(spec)
                       if (why := self._sources.refusal(account.id, url)) is not None]
            if refused:
                raise SpecInvalid(refused)
        return seal(spec, self._box, account.id) if self._box is not None else spec

    def create_app(self, account: Account, raw_spec: object, project_id: object = None) -> AppView:
        spec = self._checked(account, raw_spec)
        now = self._clock.now()
        app = App(
            id=new_uuid(), account_id=account.id, name=spec["name"], spec=spec,
            region=resolve_region(spec.get("region")),
            ingress_host=f"{spec['name']}-{ingress_suffix()}.{self._apps_domain}",
            tier_slug=tier_of(spec), project_id=_project_id(project_id, account),
            created_at=now, updated_at=now, last_deployment_created_at=now,
        )
        dep = new_deployment(app, spec, Trigger("app created", action="CREATE_DEPLOYMENT"), account, now,
                             app.tier_slug)
        self._store.insert_app(app, dep)
        self.queue.submit(app.id, dep.id)
        return AppView(app=app, pending=dep)

    def get_app(self, account: Account, app_id: str) -> App:
        app = self._store.get_app(account.id, app_id) if is_uuid(app_id) else None
        if app is None:
            raise NotFound(f"app {app_id!r} not found")
        return app

    def heard(self, change: Change) -> None:
        """A committed write, by this server or (through the change feed) another one."""
        if change.kind == APP:
            self.forget(change.key)
        elif change.kind == EVERYTHING:
            with self._lock:
                self._epoch += 1
                self._floor = self._epoch
                self._views.clear()

    def forget(self, app_id: str) -> None:
        """The app or one of its deployments changed (called after the write committed)."""
        with self._lock:
            self._epoch += 1
            self._changed_at[app_id] = self._epoch
            self._views.pop(app_id, None)

    def cached_view(self, account: Account, app_id: str) -> AppView | None:
        """The app's view if it is cached (no I/O, so callable on the event loop)."""
        view = self._views.get(app_id)
        return view if view is not None and view.app.account_id == account.id else None

    def get_app_view(self, account: Account, app_id: str) -> AppView:
        epoch = self._epoch
        return self.cached_view(account, app_id) or self.views([self.get_app(account, app_id)], epoch)[0]

    def get_app_by_name(self, account: Account, name: str) -> AppView:
        epoch = self._epoch
        app = self._store.get_app_by_name(account.id, name)
        if app is None:
            raise NotFound(f"app named {name!r} not found")
        return self.views([app], epoch)[0]

    def list_apps(self, account: Account, page: int, per_page: int) -> tuple[list[AppView], int]:
        epoch = self._epoch
        found = self._store.list_apps(account.id, (page - 1) * per_page, per_page)
        return self.views(found.items, epoch), found.total

    def views(self, apps: list[App], epoch: int) -> list[AppView]:
        """Apps with their deployments: cached ones as they are, the rest in two queries.

        ``epoch`` is the change count from before ``apps`` were read: a view assembled from rows
        that a reported change may have overtaken is answered but not cached.
        """
        cached = {a.id: v for a in apps if (v := self._views.get(a.id)) is not None and v.app == a}
        fresh = {v.app.id: v for v in self._assemble([a for a in apps if a.id not in cached])}
        if len(self._views) > VIEW_CACHE_SIZE:
            self._views.clear()
        with self._lock:
            for app_id, view in fresh.items():
                if self._changed_at.get(app_id, 0) <= epoch and self._floor <= epoch:
                    self._views[app_id] = view
        return [cached.get(a.id) or fresh[a.id] for a in apps]

    def _assemble(self, apps: list[App]) -> list[AppView]:
        recent = self._deployments.newest_deployments([a.id for a in apps])
        pointers = {i for a in apps for i in (a.active_deployment_id, a.pinned_deployment_id) if i}
        known = {d.id: d for deps in recent.values() for d in deps}
        known.update(self._deployments.deployments_by_ids(pointers - set(known)))
        views = []
        for app in apps:
            deps = recent.get(app.id, [])
            views.append(AppView(
                app=app,
                active=known.get(app.active_deployment_id or ""),
                in_progress=next((d for d in deps if d.phase in IN_PROGRESS), None),
                pending=next((d for d in deps if d.phase != Phase.CANCELED), None),
                pinned=known.get(app.pinned_deployment_id or ""),
            ))
        return views

    def update_app(self, account: Account, app_id: str, raw_spec: object,
                   update_all_source_versions: bool = False) -> AppView:
        current = self.get_app(account, app_id)
        refuse_if_pinned(current)
        spec = self._checked(account, raw_spec)
        if not update_all_source_versions:
            unchanged = self._unchanged(current, spec)
            if unchanged is not None:
                return unchanged
        now = self._clock.now()
        dep = new_deployment(current, spec, Trigger("app spec updated", action="UPDATE_SPEC"), account, now,
                             tier_of(spec))
        app = self._store.update_app_spec(account.id, app_id, spec, resolve_region(spec.get("region")), now, dep)
        if app is None:  # deleted between the read and the write
            raise NotFound(f"app {app_id!r} not found")
        self.queue.submit(app.id, dep.id)
        return AppView(app=app, pending=dep, active=self.views([app], self._epoch)[0].active)

    def _unchanged(self, current: App, spec: dict[str, Any]) -> AppView | None:
        """The app's view when ``spec`` runs exactly what its newest deployment runs (or will run),
        so no deployment is made and nothing restarts; None when a deployment is needed.

        The newest non-canceled deployment must be live or on its way with a spec that means the
        same: after a failed deployment, re-applying the same spec deploys again (a retry). A spec
        that differs only in what does not run (a default spelled out) is stored as sent.
        """
        view = self.views([current], self._epoch)[0]
        newest = view.pending
        if newest is None or newest.phase not in (Phase.ACTIVE, *IN_PROGRESS, Phase.PENDING_BUILD):
            return None
        if diff(newest.spec, spec).changed or diff(current.spec, spec).changed:
            return None
        if spec == current.spec:
            return view
        app = self._store.update_app_spec(current.account_id, current.id, spec, resolve_region(spec.get("region")),
                                          self._clock.now())
        if app is None:
            raise NotFound(f"app {current.id!r} not found")
        return replace(view, app=app)

    def delete_app(self, account: Account, app_id: str) -> None:
        if not is_uuid(app_id) or not self._store.delete_app(account.id, app_id):
            raise NotFound(f"app {app_id!r} not found")
        self.queue.remove(app_id)

    def propose(self, account: Account, raw_spec: object, app_id: object = None) -> Proposal:
        spec = self._checked(account, raw_spec)
        existing = None
        if app_id not in (None, ""):
            if not isinstance(app_id, str):
                raise BadRequest("app_id must be a string")
            existing = self.get_app(account, app_id)
        taken = self._store.app_names(account.id, _stem(spec["name"])[:20])
        if existing is not None:
            taken.discard(existing.name)
        available = spec["name"] not in taken
        static_apps = sum(1 for a in self._static_apps(account) if existing is None or a != existing.id)
        return Proposal(
            spec=spec, app_name_available=available,
            app_name_suggestion=None if available else _suggest(spec["name"], taken),
            app_is_static=is_static(spec), existing_static_apps=static_apps,
            app_cost=round(app_cost(spec)),
            warnings=database_warnings(spec) + reference_warnings(spec) + [
                f"{path}: this secret was encrypted by another server (e.g. DigitalOcean) and cannot be decrypted "
                "here; set its plaintext value, or deployments that need it will fail"
                for path in (foreign_secrets(spec, self._box, account.id) if self._box is not None else [])],
        )

    def _static_apps(self, account: Account) -> list[str]:
        page = self._store.list_apps(account.id, 0, 10_000)
        return [a.id for a in page.items if is_static(a.spec)]


def _clone_urls(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """``(field path, repo_clone_url)`` of every component that names its repository by URL."""
    return [(f"{kind}[{i}].git.repo_clone_url", str(component["git"]["repo_clone_url"]))
            for kind in ("services", "static_sites", "workers", "jobs", "functions")
            for i, component in enumerate(spec.get(kind) or [])
            if isinstance(component.get("git"), dict) and component["git"].get("repo_clone_url")]


def _project_id(value: object, account: Account) -> str:
    if value in (None, ""):
        return account.default_project_id
    if not isinstance(value, str) or not is_uuid(value):
        raise BadRequest("project_id must be a UUID")
    return value.lower()


def _stem(name: str) -> str:
    # Only a counter like our own suggestions' (-2 ... -999) is replaced; a name that ends in a date or
    # a digits-only hash (shop-2024, app-09079465) keeps it and gets the counter after it.
    return re.sub(r"-[1-9]\d{0,2}$", "", name)


def _suggest(name: str, taken: set[str]) -> str:
    """``sample-2``, ``sample-3``... — the first free name, kept within the 32-character limit."""
    stem = _stem(name)
    for n in range(2, 10_000):
        suffix = f"-{n}"
        candidate = stem[: 32 - len(suffix)].rstrip("-") + suffix
        if candidate not in taken:
            return candidate
    return f"{stem[:23]}-{new_uuid()[:8]}"

