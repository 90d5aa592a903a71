"""The progress tree of a deployment, as DigitalOcean shows it, its leaf counters, and the typed
action each leaf stands for.

Steps are plain JSON-ready dicts (they are stored and served as they are)::

    build      initialize · [components/<c>]
    deploy     initialize · [databases/<db>] · [pre_deploy/<job>] · [components/<c>/{deploy, wait}]
               · [post_deploy/<job>] · [failed_deploy/<job>] · finalize

An archived app's components get ``components/<c>/stop`` instead (``AppPlan.stopped``). A group with
nothing in it is left out: an empty group would count as a leaf that no step can perform.
``build_tree`` writes that shape and ``action_at`` reads it back, so it is known in this module only.

Counters count leaf steps only. Steps that never run on a healthy deployment (FAILED_DEPLOY jobs,
a reused build) end ``SUCCESS`` rather than staying ``PENDING``: clients wait for every step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shoal.domain.plan import MESSAGE_BASE, AppPlan, JobKind, Kind, RunUnit, jobs_of_kind

PENDING, RUNNING, SUCCESS, ERROR = "PENDING", "RUNNING", "SUCCESS", "ERROR"
ZERO_TIME = "0001-01-01T00:00:00Z"

Step = dict[str, Any]
StepKey = tuple[str, ...]  # the names from the root to a step, e.g. ("deploy", "components", "web", "wait")


def _step(name: str, children: list[Step] | None = None, component: str | None = None,
          message_base: str | None = None) -> Step:
    step: Step = {"name": name, "status": PENDING, "started_at": ZERO_TIME, "ended_at": ZERO_TIME}
    if component:
        step["component_name"] = component
    if message_base:
        step["message_base"] = message_base
    if children is not None:
        step["steps"] = children
    return step


def _deploy_component(part: RunUnit) -> Step:
    noun = MESSAGE_BASE[part.kind]
    children = [_step("deploy", component=part.name, message_base=f"Deploying {noun}")]
    if part.runs_continuously:
        children.append(_step("wait", component=part.name, message_base=f"Waiting for {noun}"))
    return _step(part.name, children, component=part.name)


def _stop_component(part: RunUnit) -> Step:
    stop = _step("stop", component=part.name, message_base=f"Stopping {MESSAGE_BASE[part.kind]}: the app is archived")
    return _step(part.name, [stop], component=part.name)


def _group(name: str, children: list[Step]) -> list[Step]:
    return [_step(name, children)] if children else []


def _jobs_group(name: str, verb: str, jobs: list[RunUnit]) -> list[Step]:
    return _group(name, [_step(j.name, component=j.name, message_base=f"{verb} job") for j in jobs])


def build_tree(parts: Sequence[RunUnit], stopped: Sequence[RunUnit] = ()) -> list[Step]:
    """The tree for a deployment that runs ``parts`` and keeps ``stopped`` stopped (an archived app)."""
    databases = [p for p in parts if p.kind == Kind.DATABASE]
    deploy_children: list[Step] = [_step("initialize")]
    deploy_children += _group("databases", [_step(d.name, component=d.name, message_base="Provisioning database")
                                            for d in databases])
    deploy_children += _jobs_group("pre_deploy", "Running pre-deploy", jobs_of_kind(parts, JobKind.PRE_DEPLOY))
    deploy_children += _group("components", [_deploy_component(p) for p in parts if p.deploys]
                              + [_stop_component(p) for p in stopped if p.deploys])
    deploy_children += _jobs_group("post_deploy", "Running post-deploy", jobs_of_kind(parts, JobKind.POST_DEPLOY))
    deploy_children += _jobs_group("failed_deploy", "Running failed-deploy", jobs_of_kind(parts, JobKind.FAILED_DEPLOY))
    deploy_children.append(_step("finalize"))
    build = _step("build", [_step("initialize"), *_group("components", [
        _step(p.name, component=p.name, message_base=f"Building {MESSAGE_BASE[p.kind]}") for p in parts if p.builds])])
    return [build, _step("deploy", deploy_children)]


def find(steps: list[Step], path: StepKey) -> Step:
    node: Step = {"steps": steps}
    for name in path:
        node = next(s for s in node.get("steps", []) if s["name"] == name)
    return node


def has(steps: list[Step], path: StepKey) -> bool:
    try:
        find(steps, path)
    except StopIteration:
        return False
    return True


def leaves(steps: list[Step]) -> list[Step]:
    found: list[Step] = []
    for step in steps:
        found.extend(leaves(step["steps"]) if step.get("steps") else [step])
    return found


def mark(steps: list[Step], path: StepKey, status: str, now: str,
         reason: dict[str, str] | None = None) -> None:
    """Set a step's status and times, and roll the change up through its parents."""
    step = find(steps, path)
    if status == RUNNING or (step["started_at"] == ZERO_TIME and status in (SUCCESS, ERROR)):
        step["started_at"] = now
    if status in (SUCCESS, ERROR):
        step["ended_at"] = now
    step["status"] = status
    if reason:
        step["reason"] = reason
    for depth in range(len(path) - 1, 0, -1):
        _roll_up(find(steps, path[:depth]), now)


def _roll_up(parent: Step, now: str) -> None:
    statuses = {s["status"] for s in parent.get("steps", [])}
    if ERROR in statuses:
        status = ERROR
    elif statuses == {SUCCESS}:
        status = SUCCESS
    elif statuses & {RUNNING, SUCCESS}:
        status = RUNNING
    else:
        status = PENDING
    if status != PENDING and parent["started_at"] == ZERO_TIME:
        parent["started_at"] = now
    if status in (SUCCESS, ERROR) and parent["status"] not in (SUCCESS, ERROR):
        parent["ended_at"] = now
    parent["status"] = status


def finish_pending(steps: list[Step], now: str, status: str = SUCCESS) -> None:
    """End every step still pending or running (skipped steps of a finished deployment)."""
    for step in steps:
        if step.get("steps"):
            finish_pending(step["steps"], now, status)
            _roll_up(step, now)
        elif step["status"] in (PENDING, RUNNING):
            step["status"] = status
            if step["started_at"] == ZERO_TIME:
                step["started_at"] = now
            step["ended_at"] = now


def counters(steps: list[Step]) -> dict[str, int]:
    counts = {PENDING: 0, RUNNING: 0, SUCCESS: 0, ERROR: 0}
    for leaf in leaves(steps):
        counts[leaf["status"]] = counts.get(leaf["status"], 0) + 1
    return {"pending_steps": counts[PENDING], "running_steps": counts[RUNNING], "success_steps": counts[SUCCESS],
            "error_steps": counts[ERROR], "total_steps": sum(counts.values())}


def summary(steps: list[Step]) -> list[Step]:
    """A flattened, human-sized view: each top-level step and its direct children, without grandchildren."""
    flat: list[Step] = []
    for step in steps:
        flat.append({k: v for k, v in step.items() if k != "steps"})
    return flat


def wire(steps: list[Step]) -> dict[str, Any]:
    return {**counters(steps), "steps": steps, "summary_steps": summary(steps)}


def next_leaf(tree: list[Step], prefix: StepKey = ()) -> StepKey | None:
    """The first leaf, depth first, that has not succeeded: where the pipeline stands."""
    for step in tree:
        key = (*prefix, step["name"])
        if step.get("steps"):
            found = next_leaf(step["steps"], key)
            if found:
                return found
        elif step["status"] != SUCCESS:
            return key
    return None


# -- the typed actions the leaves stand for ------------------------------------------------------


@dataclass(frozen=True)
class InitializeBuild:
    pass


@dataclass(frozen=True)
class Build:
    unit: RunUnit


@dataclass(frozen=True)
class InitializeDeploy:
    pass


@dataclass(frozen=True)
class Provision:
    unit: RunUnit


@dataclass(frozen=True)
class RunJob:
    unit: RunUnit
    group: str  # pre_deploy, post_deploy or failed_deploy: also the job invocation's key


@dataclass(frozen=True)
class Start:
    unit: RunUnit


@dataclass(frozen=True)
class Wait:
    unit: RunUnit


@dataclass(frozen=True)
class Stop:
    unit: RunUnit


@dataclass(frozen=True)
class Finalize:
    pass


Action = InitializeBuild | Build | InitializeDeploy | Provision | RunJob | Start | Wait | Stop | Finalize
JOB_GROUPS = ("pre_deploy", "post_deploy", "failed_deploy")


def action_at(key: StepKey, plan: AppPlan) -> Action:
    """The action the leaf at ``key`` stands for (the shape ``build_tree`` writes)."""
    match key:
        case ("build", "initialize"):
            return InitializeBuild()
        case ("build", "components", name):
            return Build(plan.unit(name))
        case ("deploy", "initialize"):
            return InitializeDeploy()
        case ("deploy", "databases", name):
            return Provision(plan.unit(name))
        case ("deploy", group, name) if group in JOB_GROUPS:
            return RunJob(plan.unit(name), group)
        case ("deploy", "components", name, "deploy"):
            return Start(plan.unit(name))
        case ("deploy", "components", name, "wait"):
            return Wait(plan.unit(name))
        case ("deploy", "components", name, "stop"):
            return Stop(plan.unit(name))
        case ("deploy", "finalize"):
            return Finalize()
    raise ValueError(f"no action for progress step {'/'.join(key)}")


def stage_of(key: StepKey) -> str:
    """The log stage a step's lines belong to."""
    return "BUILD" if key[:1] == ("build",) else "DEPLOY"


def component_of(key: StepKey) -> str | None:
    return key[2] if len(key) > 2 else None
