"""A unit's environment inside the cluster: secrets decrypted (into the unit's Secret only), bindable
variables resolved the way pods reach each other — ``${api.PRIVATE_URL}`` is ``http://api:8080``, the
component's stable Service — and ``PORT`` set for services, as on DigitalOcean."""

from __future__ import annotations

from collections.abc import Iterable

from shoal.core.errors import InvalidArgument
from shoal.core.secrets import SecretBox, is_encrypted
from shoal.domain.bindables import BindContext, resolve, routed_variables, service_variables, worker_variables
from shoal.domain.deployments import StepFailed
from shoal.domain.plan import DEFAULT_HTTP_PORT, AppPlan, EnvVar, Kind, RunUnit


def bind_context(plan: AppPlan) -> BindContext:
    domain = plan.app_url.split("://", 1)[-1].split("/", 1)[0]
    route_of = {r.component: r.prefix for r in reversed(plan.routes) if r.component}
    components: dict[str, dict[str, str]] = {}
    for unit in plan.units:
        route = route_of.get(unit.name)
        public = plan.app_url if route else None
        if unit.kind == Kind.SERVICE:
            components[unit.name] = service_variables(unit.name, unit.http_port, list(unit.internal_ports), public,
                                                      route, unit.commit, unit.name, unit.http_port)
        elif unit.kind in (Kind.STATIC_SITE, Kind.FUNCTION):
            components[unit.name] = routed_variables(public, route, unit.commit)
        elif unit.kind != Kind.DATABASE:
            components[unit.name] = worker_variables(unit.commit)
    return BindContext(app={"APP_URL": plan.app_url, "APP_DOMAIN": domain, "APP_ID": plan.app_id},
                       components=components)


def unit_env(plan: AppPlan, unit: RunUnit, box: SecretBox | None) -> tuple[dict[str, str], frozenset[str]]:
    """The unit's run-time variables with their final values, and which of them are SECRET."""
    env, secret = _values(plan, unit, unit.run_env, box, build_time=False)
    if unit.kind == Kind.SERVICE:
        env.setdefault("PORT", str(unit.http_port or DEFAULT_HTTP_PORT))
    return env, secret


def build_env(plan: AppPlan, unit: RunUnit, box: SecretBox | None) -> dict[str, str]:
    """The unit's BUILD_TIME / RUN_AND_BUILD_TIME variables for an image build on shoal's host."""
    return _values(plan, unit, unit.build_env, box, build_time=True)[0]


def _values(plan: AppPlan, unit: RunUnit, variables: Iterable[EnvVar], box: SecretBox | None,
            build_time: bool) -> tuple[dict[str, str], frozenset[str]]:
    ctx = bind_context(plan)
    env: dict[str, str] = {}
    secret: set[str] = set()
    for var in variables:
        raw = var.value
        if var.secret:
            secret.add(var.key)
            if box is not None and is_encrypted(raw):
                try:
                    raw = box.decrypt(plan.account_id, raw)
                except InvalidArgument as exc:
                    raise StepFailed("InternalError", f"{unit.name}: secret {var.key} cannot be decrypted "
                                                      f"({exc.message})") from exc
        env[var.key] = resolve(raw, ctx, unit.name, build_time)
    return env, frozenset(secret)
