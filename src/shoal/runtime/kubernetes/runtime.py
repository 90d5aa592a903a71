"""``shoal serve --runtime kubernetes``: each deployment's run units as objects in the app's namespace.

Every step re-reads what it acts on and applies idempotently (``apply``), so the engine repeating a
step after a crash changes nothing. The cluster's side, per deployment (see ``render``): a Deployment
per service and worker, a Secret of its SECRET values, an HPA when autoscaled, a Job per job run; per
app: the namespace and a stable Service per HTTP service, moved to the new deployment's pods when it
goes live. shoal's ingress sends traffic to the Service's ready endpoints (followed as they change);
pods' logs become RUN logs. Stopping shoal leaves all of it running; ``restore`` adopts it again.

Images (``artifacts``): ``image`` sources run as they are, pinned by digest (``images``); services, workers
and jobs built from git are built on shoal's host by the container runtime's builder and pushed to
``--image-registry`` (``builds``); static sites are built and served by shoal itself (``static``).
What this backend cannot run yet: dev databases, functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from shoal.core.errors import BadRequest, NotFound
from shoal.core.secrets import SecretBox
from shoal.domain.deployments import StepFailed
from shoal.domain.plan import DEFAULT_HTTP_PORT, AppPlan, Artifact, Kind, RunUnit, probe_from_spec
from shoal.domain.ports import Console, DatabaseConnection, InstanceState, LogSink, RoutePublisher, SourcePolicy
from shoal.domain.routing import Backend, Upstream
from shoal.runtime.kubernetes import podstate, render
from shoal.runtime.kubernetes.apply import Applier, Ref
from shoal.runtime.kubernetes.artifacts import Artifacts
from shoal.runtime.kubernetes.builds import ClusterImages
from shoal.runtime.kubernetes.connection import Kube, Target
from shoal.runtime.kubernetes.console import open_pod_console
from shoal.runtime.kubernetes.discovery import Catalog
from shoal.runtime.kubernetes.environment import unit_env
from shoal.runtime.kubernetes.errors import GiveUp, KubeError, RetryIn
from shoal.runtime.kubernetes.followers import Endpoints, Follower, PodLogs
from shoal.runtime.kubernetes.logs import pod_log, pods
from shoal.runtime.kubernetes.namespaces import delete_namespace, ensure_namespace, namespace_name
from shoal.runtime.kubernetes.static import StaticSites
from shoal.runtime.kubernetes.watch import converge, deployment_rollout, job_finished
from shoal.runtime.local.offline import custom_page, page_for
from shoal.runtime.local.sources import SourceCache

T = TypeVar("T")
JOB_SLACK_SECONDS = 60.0
DEFAULT_DRAIN_SECONDS = 15.0
# What a deployment made, by kind, for retire/discard (the Service and namespace are the app's).
PER_DEPLOYMENT = (("apps/v1", "Deployment"), ("batch/v1", "Job"), ("v1", "Secret"))


@dataclass(frozen=True)
class KubeOptions:
    target: Target
    data_dir: Path
    image_registry: str | None = None
    ingress_class: str | None = None
    mirrors: Mapping[str, str] = field(default_factory=dict)


def _failed(code: str, exc: KubeError, what: str) -> StepFailed:
    return StepFailed(code, f"{what}: {exc.reason}")


class KubernetesRuntime:
    name = "kubernetes"

    def __init__(self, options: KubeOptions, routes: RoutePublisher, box: SecretBox | None = None,
                 sources: SourcePolicy | None = None,
                 images: Callable[[SourceCache], ClusterImages] | None = None) -> None:
        """``images`` makes the builder of git-sourced images (over this runtime's source cache) when
        ``--image-registry`` is set (``registry._kubernetes`` wires it); without it those fail to build."""
        self._options = options
        self._kube = Kube(options.target)
        self._catalog = Catalog(self._kube)
        self._applier = Applier(self._kube, self._catalog)
        self._routes = routes
        self._box = box
        self._sources = SourceCache(options.data_dir / "cache" / "git", sources)
        self._static = StaticSites(options.data_dir, self._sources)
        self._images = images(self._sources) if images is not None else None
        self._artifacts = Artifacts(self._sources, self._static, self._images, options.mirrors, box)
        self._live: dict[str, str] = {}  # app → the deployment its Services select
        self._logs: dict[tuple[str, str, str], Follower] = {}  # (app, deployment, unit) → its pods' logs
        self._endpoints: dict[tuple[str, str], Endpoints] = {}  # (app, service) → its endpoints follower
        self._background: set[asyncio.Task[None]] = set()
        self._drains: dict[tuple[str, str], float] = {}  # (app, deployment) → its services' longest drain
        self._removed: set[str] = set()  # deleted apps: nothing may bring their namespace back

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    def _how(self, plan: AppPlan) -> render.Rendering:
        return render.Rendering(namespace_name(plan.app_id), self._catalog.versions().hpa,
                                self._options.ingress_class)

    # -- build ---------------------------------------------------------------------------------

    async def fetch(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> str:
        return await self._artifacts.fetch(plan, unit, log)

    async def build(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> Artifact:
        return await self._artifacts.build(plan, unit, log)

    async def provision_database(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        raise StepFailed("DeployJobFailed", f"{unit.name}: dev databases are not provided by the kubernetes runtime "
                                            "yet; bind a production database cluster instead")

    # -- run -----------------------------------------------------------------------------------

    def _workload_objects(self, plan: AppPlan, unit: RunUnit) -> list[dict[str, Any]]:
        how = self._how(plan)
        env, secret_keys = unit_env(plan, unit, self._box)
        objects = [render.secret_object(plan, unit, env, secret_keys, how)] if secret_keys else []
        objects.append(render.deployment_object(plan, unit, self._artifacts.image(unit), env, secret_keys, how))
        if (hpa := render.hpa_object(plan, unit, how)) is not None:
            objects.append(hpa)
        return objects

    def _ensure_namespace(self, plan: AppPlan) -> None:
        if plan.app_id in self._removed:  # a scheduled run that fired as the app was deleted
            raise GiveUp(f"app {plan.app_id} was deleted")
        ensure_namespace(self._applier, plan.app_id, plan.app_name, plan.account_id or "default")

    def _apply_unit(self, plan: AppPlan, unit: RunUnit) -> list[dict[str, Any]]:
        self._ensure_namespace(plan)
        return self._applier.apply_all(self._workload_objects(plan, unit))

    async def start(self, plan: AppPlan, unit: RunUnit, log: LogSink, restoring: bool = False) -> None:
        if unit.kind == Kind.STATIC_SITE:
            return
        if unit.kind == Kind.JOB:
            if unit.scheduled and unit.schedule is not None:
                log("DEPLOY", unit.name, f"scheduled {unit.name}: {unit.schedule.cron} ({unit.schedule.time_zone});"
                                         " each run is a Job")
            return
        try:
            applied = await self._retrying(lambda: self._apply_unit(plan, unit))
        except GiveUp as exc:
            raise _failed("DeployJobFailed", exc, f"{unit.name} could not be applied") from exc
        deployment = applied[-2] if unit.autoscaling else applied[-1]
        log("DEPLOY", unit.name, f"applied Deployment {deployment['metadata']['name']} in "
                                 f"{deployment['metadata']['namespace']}: {unit.instance_count} instance(s) of "
                                 f"{self._artifacts.image(unit)}")
        self._follow_logs(plan, unit, log, only_new=restoring)
        if unit.kind == Kind.SERVICE:
            key = (plan.app_id, plan.deployment_id)
            self._drains[key] = max(self._drains.get(key, 0.0), unit.termination.drain_seconds)

    def _follow_logs(self, plan: AppPlan, unit: RunUnit, log: LogSink, only_new: bool = False) -> None:
        key = (plan.app_id, plan.deployment_id, unit.name)
        if key not in self._logs:
            selector = ",".join(f"{k}={v}" for k, v in render.pod_selector(plan, unit).items())
            self._logs[key] = PodLogs(self._kube, namespace_name(plan.app_id), selector, unit.name, log, only_new)

    async def _retrying(self, step: Callable[[], T], budget: float = 60.0) -> T:
        """Run a blocking step, again after each RetryIn, until ``budget`` seconds are spent."""
        deadline = time.monotonic() + budget
        while True:
            try:
                return await self._call(step)
            except RetryIn as exc:
                if time.monotonic() + exc.seconds > deadline:
                    raise GiveUp(exc.reason, exc.status) from exc
                await asyncio.sleep(exc.seconds)

    async def wait_healthy(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        if not unit.runs_continuously:
            return
        ref = Ref("apps/v1", "Deployment", namespace_name(plan.app_id), render.workload_name(unit, plan.deployment_id))
        patience = (unit.readiness or probe_from_spec(None, unit.http_port or DEFAULT_HTTP_PORT)).patience_seconds
        progress: Callable[[str], None] = lambda message: log("DEPLOY", unit.name, message)  # noqa: E731
        try:
            await self._call(converge, self._kube, self._catalog, ref, deployment_rollout, patience, progress)
        except KubeError as exc:
            hint = await self._call(self._pod_trouble, plan, unit)
            raise StepFailed("ContainerHealthChecksFailed",
                             f"{unit.name} did not become healthy: {exc.reason}{hint}; see its RUN logs") from exc
        log("DEPLOY", unit.name, f"{unit.name} is healthy ({unit.instance_count} ready)")

    def _pod_trouble(self, plan: AppPlan, unit: RunUnit) -> str:
        selector = ",".join(f"{k}={v}" for k, v in render.pod_selector(plan, unit).items())
        try:
            return podstate.trouble(pods(self._kube, namespace_name(plan.app_id), selector))
        except KubeError:
            return ""

    async def stop(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        """Archived: nothing of the unit keeps running (every deployment's objects of it go)."""
        selector = f"{render.APP_ID}={plan.app_id},{render.COMPONENT}={unit.name}"
        removed = await self._call(self._delete_selected, namespace_name(plan.app_id), selector)
        for key in [k for k in self._logs if k[0] == plan.app_id and k[2] == unit.name]:
            self._logs.pop(key).stop(0)
        if removed:
            log("DEPLOY", unit.name, f"stopped {unit.name}")

    # -- traffic ---------------------------------------------------------------------------------

    def _switch_services(self, plan: AppPlan) -> dict[str, list[tuple[str, int]]]:
        """Point each HTTP service's stable Service at ``plan``'s pods; their ready addresses now."""
        how = self._how(plan)
        found: dict[str, list[tuple[str, int]]] = {}
        for unit in plan.running:
            if unit.kind != Kind.SERVICE:
                continue
            self._applier.apply(render.service_object(plan, unit, how))
            selector = ",".join(f"{k}={v}" for k, v in render.pod_selector(plan, unit).items())
            port = unit.http_port or DEFAULT_HTTP_PORT
            found[unit.name] = [(p["status"]["podIP"], port) for p in pods(self._kube, how.namespace, selector)
                                if p["status"].get("podIP") and podstate.ready(p)]
        if (ingress := render.ingress_object(plan, how)) is not None:
            self._applier.apply(ingress)
        return found

    async def switch_traffic(self, plan: AppPlan, log: LogSink) -> None:
        try:
            ready = await self._retrying(lambda: self._switch_services(plan))
        except GiveUp as exc:
            raise _failed("DeployJobFailed", exc, "traffic could not be switched") from exc
        backends: dict[str, Backend] = {}
        loop = asyncio.get_running_loop()
        for unit in plan.running:
            if unit.kind == Kind.SERVICE:
                upstream = Upstream(ready.get(unit.name, []), http2=unit.protocol == "HTTP2")
                backends[unit.name] = upstream
                self._follow_endpoints(plan, unit.name, upstream, loop)
            elif unit.kind == Kind.STATIC_SITE and (site := await self._static.site(plan, unit, log)) is not None:
                backends[unit.name] = site
        offline = await page_for(plan.app_name, plan.maintenance.offline_page_url, log) if plan.offline else None
        error = await custom_page(plan.error_page_url, "error page", log) if plan.error_page_url else None
        self._routes.publish(plan.app_id, list(plan.hosts), list(plan.routes), backends, offline, plan.min_tls, error)
        self._live[plan.app_id] = plan.deployment_id

    def _follow_endpoints(self, plan: AppPlan, service: str, upstream: Upstream,
                          loop: asyncio.AbstractEventLoop) -> None:
        key = (plan.app_id, service)
        found = self._endpoints.get(key)
        if found is None:
            self._endpoints[key] = Endpoints(self._kube, namespace_name(plan.app_id), service, upstream, loop)
        else:
            found.upstream = upstream

    # -- jobs ------------------------------------------------------------------------------------

    async def run_job(self, plan: AppPlan, unit: RunUnit, log: LogSink) -> None:
        run = datetime.now(UTC).strftime("%Y%m%d%H%M%S") if unit.scheduled else None

        def submit() -> dict[str, Any]:
            how = self._how(plan)
            env, secret_keys = unit_env(plan, unit, self._box)
            job = render.job_object(plan, unit, self._artifacts.image(unit), env, secret_keys, how, run)
            self._ensure_namespace(plan)
            if secret_keys:
                self._applier.apply(render.secret_object(plan, unit, env, secret_keys, how))
            return self._applier.apply(job)

        try:
            job = await self._retrying(submit)
        except GiveUp as exc:
            raise _failed("DeployJobFailed", exc, f"job {unit.name} could not be submitted") from exc
        how = self._how(plan)  # discovered by submit() already: no request here
        log("DEPLOY", unit.name, f"running job {unit.name} as Job {job['metadata']['name']}")
        ref = Ref("batch/v1", "Job", how.namespace, job["metadata"]["name"])
        timeout = (unit.timeout_seconds or 1800.0) + JOB_SLACK_SECONDS
        failure: KubeError | None = None
        try:
            await self._call(converge, self._kube, self._catalog, ref, job_finished, timeout)
        except KubeError as exc:
            failure = exc
        code = await self._call(self._job_output, how.namespace, job["metadata"]["name"], unit, log)
        if failure is not None or code not in (0, None):
            why = f"exited with status {code}" if code not in (0, None) else failure.reason if failure else ""
            raise StepFailed("ContainerExitNonZero", f"job {unit.name} {why}")

    def _job_output(self, namespace: str, job: str, unit: RunUnit, log: LogSink) -> int | None:
        """Copy the job's log into the deployment's and return its exit code (None if it never ran)."""
        code: int | None = None
        for pod in pods(self._kube, namespace, f"job-name={job}"):
            with contextlib.suppress(KubeError):
                for line in pod_log(self._kube, namespace, pod["metadata"]["name"]):
                    log("DEPLOY", unit.name, line)
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                terminated = (status.get("state") or {}).get("terminated") or {}
                if "exitCode" in terminated:
                    code = int(terminated["exitCode"])
        return code

    # -- what runs ---------------------------------------------------------------------------------

    def instances(self, app_id: str) -> list[InstanceState]:
        """The app's pods now (asked on the event loop by /instances and /health: one quick list)."""
        try:
            found = pods(self._kube, namespace_name(app_id), f"{render.APP_ID}={app_id},{render.ROLE} in "
                                                             "(service,worker)", timeout=3.0)
        except KubeError:
            return []
        return [InstanceState(p["metadata"]["labels"].get(render.DEPLOYMENT, ""),
                              p["metadata"]["labels"].get(render.COMPONENT, ""), p["metadata"]["name"], podstate.ready(p),
                              podstate.restarts(p), podstate.started(p))
                for p in found if p["metadata"].get("deletionTimestamp") is None]

    def database_connections(self, app_id: str) -> list[DatabaseConnection]:
        return []  # no dev databases here (``provision_database``)

    async def reset_database_password(self, app_id: str, component: str) -> None:
        raise BadRequest(f"database {component}: the kubernetes runtime provides no dev databases, so there is no "
                         "password of shoal's to reset")

    async def open_console(self, app_id: str, deployment_id: str, component: str, instance: str) -> Console:
        """``doctl apps console``: a shell in the instance's pod (an exec with a tty, ``console.py``)."""
        selector = f"{render.APP_ID}={app_id},{render.DEPLOYMENT}={deployment_id},{render.COMPONENT}={component}"
        try:
            found = await self._call(pods, self._kube, namespace_name(app_id), selector)
        except KubeError as exc:
            raise NotFound(f"instance {instance!r} of {component} is not running ({exc})") from exc
        if not any(p["metadata"]["name"] == instance and podstate.ready(p) for p in found):
            raise NotFound(f"instance {instance!r} of {component} is not running")
        return await open_pod_console(self._kube, namespace_name(app_id), instance, None)

    # -- retire, discard, remove -------------------------------------------------------------------

    def _delete_selected(self, namespace: str, selector: str) -> int:
        removed = 0
        for api_version, kind in PER_DEPLOYMENT:
            path = self._catalog.kind(api_version, kind).path(namespace)
            for item in self._kube.request("GET", path, [("labelSelector", selector)]).get("items") or []:
                removed += self._applier.delete(Ref(api_version, kind, namespace, item["metadata"]["name"]))
        return removed

    async def _remove_deployment(self, app_id: str, deployment_id: str, drain: float) -> None:
        await asyncio.sleep(drain)
        for key in [k for k in self._logs if k[:2] == (app_id, deployment_id)]:
            await self._call(self._logs.pop(key).stop)
        self._static.forget(deployment_id)
        selector = f"{render.APP_ID}={app_id},{render.DEPLOYMENT}={deployment_id}"
        with contextlib.suppress(KubeError):
            await self._retrying(lambda: self._delete_selected(namespace_name(app_id), selector))

    async def retire(self, app_id: str, deployment_id: str) -> None:
        if self._live.get(app_id) == deployment_id:
            return
        # In the background: the old pods finish the requests they have (the spec's drain; the default
        # when shoal restarted since that deployment started) first.
        drain = self._drains.pop((app_id, deployment_id), DEFAULT_DRAIN_SECONDS)
        task = asyncio.get_running_loop().create_task(self._remove_deployment(app_id, deployment_id, drain))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def discard(self, app_id: str, deployment_id: str) -> None:
        if self._live.get(app_id) != deployment_id:
            self._drains.pop((app_id, deployment_id), None)
            await self._remove_deployment(app_id, deployment_id, 0.0)

    async def remove_app(self, app_id: str) -> None:
        self._removed.add(app_id)
        await self.release(app_id)
        if self._images is not None:  # first: the namespace may take a while to go
            await self._images.remove_app(app_id)
        try:
            await self._retrying(lambda: delete_namespace(self._applier, app_id), budget=180.0)
        except GiveUp as exc:
            raise _failed("DeployJobFailed", exc, "the app's namespace could not be deleted") from exc

    async def release(self, app_id: str) -> None:
        """Another server drives the app now: stop following it and withdraw its routes here. What runs
        in the cluster is left as it is — it is the cluster's, and the new owner adopts it."""
        self._routes.withdraw(app_id)
        followers: list[Follower] = [self._endpoints.pop(k) for k in [k for k in self._endpoints if k[0] == app_id]]
        followers += [self._logs.pop(k) for k in [k for k in self._logs if k[0] == app_id]]
        for follower in followers:
            await self._call(follower.stop)
        self._live.pop(app_id, None)

    async def restore(self, plan: AppPlan, log: LogSink) -> None:
        """shoal restarted: adopt what runs (applying the same objects changes nothing) and route to it."""
        units = [u for u in plan.running if u.runs_continuously]
        for unit in units:
            await self.start(plan, unit, log, restoring=True)  # lines already stored are not copied again
        for unit in units:
            await self.wait_healthy(plan, unit, log)
        await self.switch_traffic(plan, log)
        log("RUN", "deploy", "adopted the app's workloads after shoal restarted")

    async def close(self) -> None:
        """Stop following the cluster; everything in it keeps running (it is the cluster's now)."""
        for task in self._background:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._background, return_exceptions=True)
        followers: list[Follower] = [*self._logs.values(), *self._endpoints.values()]
        for follower in followers:
            follower.stop_event.set()
        await asyncio.gather(*(self._call(f.stop) for f in followers))
        self._logs.clear()
        self._endpoints.clear()
        await self._call(self._kube.close)
        if self._images is not None:
            await self._call(self._images.close)  # and shoal's podman service, if it started one

