"""Hypothesis strategies: arbitrary JSON, valid app specs, and mutations of specs."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

from shoal.spec import catalog

Json = dict[str, Any]

NAMES = [f"c{i}-x" for i in range(40)]
IDENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)

SIZES = [s.slug for s in catalog.INSTANCE_SIZES]
REGIONS = [r.slug for r in catalog.REGIONS] + [dc for r in catalog.REGIONS for dc in r.data_centers]


@st.composite
def sources(draw: st.DrawFn, image_ok: bool = True) -> Json:
    kinds = ["git", "github", "gitlab", "bitbucket"] + (["image"] if image_ok else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "git":
        return {"git": {"repo_clone_url": "https://example.com/a.git", "branch": "main"}}
    if kind == "image":
        image: Json = {"registry_type": "DOCR", "repository": "app"}
        if draw(st.booleans()):
            image["tag"] = "v1"
        return {"image": image}
    return {kind: {"repo": "acme/app", "branch": draw(st.sampled_from(["main", "dev"]))}}


@st.composite
def envs(draw: st.DrawFn, refs: list[str]) -> list[Json]:
    keys = draw(st.lists(st.sampled_from(["A", "B", "_C", "PORT", "URL"]), unique=True, max_size=4))
    out = []
    for key in keys:
        env: Json = {"key": key, "value": draw(st.sampled_from(["x", "${APP_URL}", "${HOME}", *refs]))}
        if draw(st.booleans()):
            env["scope"] = draw(st.sampled_from(["UNSET", "RUN_TIME", "BUILD_TIME", "RUN_AND_BUILD_TIME"]))
        if draw(st.booleans()):
            env["type"] = draw(st.sampled_from(["GENERAL", "SECRET"]))
        out.append(env)
    return out


@st.composite
def compute(draw: st.DrawFn, name: str, refs: list[str], autoscale: bool = True) -> Json:
    component: Json = {"name": name, **draw(sources())}
    if draw(st.booleans()):
        size = draw(st.sampled_from(SIZES))
        component["instance_size_slug"] = size
        info = catalog.INSTANCE_SIZES_BY_SLUG[size]
        if autoscale and info.scalable and draw(st.booleans()):
            component["autoscaling"] = {"min_instance_count": 1, "max_instance_count": draw(st.integers(1, 250))}
        elif not info.single_instance_only or info.deprecation_intent:
            component["instance_count"] = draw(st.integers(1, 250))
    component["envs"] = draw(envs(refs))
    return component


@st.composite
def app_specs(draw: st.DrawFn) -> Json:
    names = iter(draw(st.permutations(NAMES)))
    counts = [draw(st.integers(0, 3)) for _ in range(5)]
    service_names = [next(names) for _ in range(counts[0])]
    db_names = [next(names) for _ in range(counts[4])]
    refs = [f"${{{n}.PRIVATE_URL}}" for n in service_names] + [f"${{{n}.DATABASE_URL}}" for n in db_names]
    spec: Json = {"name": draw(st.sampled_from(["app", "my-app", "a1"]))}
    if draw(st.booleans()):
        spec["region"] = draw(st.sampled_from(REGIONS))
    spec["services"] = []
    prefixes = iter(draw(st.permutations(["/", "/a", "/b", "/c", "/d", "/e", "/f", "/g"])))
    for name in service_names:
        service = draw(compute(name, refs))
        if draw(st.booleans()):
            service["routes"] = [{"path": next(prefixes), "preserve_path_prefix": draw(st.booleans())}]
        if draw(st.booleans()):
            service["cors"] = {"allow_origins": [{"exact": "https://x.example.com"}]}
        spec["services"].append(service)
    spec["workers"] = [draw(compute(next(names), refs)) for _ in range(counts[1])]
    spec["jobs"] = []
    for _ in range(counts[2]):
        job = draw(compute(next(names), refs, autoscale=False))
        job["kind"] = draw(st.sampled_from(["UNSPECIFIED", "PRE_DEPLOY", "POST_DEPLOY", "FAILED_DEPLOY", "SCHEDULED"]))
        if job["kind"] == "SCHEDULED":
            job["schedule"] = {"cron": "*/5 * * * *", "time_zone": "Europe/Amsterdam"}
        spec["jobs"].append(job)
    spec["static_sites"] = []
    for _ in range(counts[3]):
        site: Json = {"name": next(names), **draw(sources(image_ok=False))}
        if draw(st.booleans()):
            site["routes"] = [{"path": next(prefixes)}]
        spec["static_sites"].append(site)
    spec["databases"] = [{"name": n, "engine": "PG"} for n in db_names]
    spec["envs"] = draw(envs(refs))
    return {k: v for k, v in spec.items() if v != [] or draw(st.booleans())}


@st.composite
def mutated(draw: st.DrawFn, spec: Json) -> Json:
    """The spec with one node replaced, removed, or given an extra key."""
    out = copy.deepcopy(spec)
    parent: Any = out
    for _ in range(draw(st.integers(0, 6))):
        keys = list(parent.keys()) if isinstance(parent, dict) else list(range(len(parent))) if isinstance(parent, list) else []
        children = [k for k in keys if isinstance(parent[k], (dict, list))]
        if not children:
            break
        parent = parent[draw(st.sampled_from(children))]
    action = draw(st.sampled_from(["replace", "remove", "add"]))
    if isinstance(parent, dict) and parent and action != "add":
        key = draw(st.sampled_from(sorted(parent, key=str)))
        if action == "remove":
            del parent[key]
        else:
            parent[key] = draw(json_values)
    elif isinstance(parent, dict):
        parent[draw(IDENT)] = draw(json_values)
    elif isinstance(parent, list) and parent:
        index = draw(st.integers(0, len(parent) - 1))
        if action == "remove":
            del parent[index]
        elif action == "add":
            parent.append(copy.deepcopy(parent[index]))
        else:
            parent[index] = draw(json_values)
    return out
