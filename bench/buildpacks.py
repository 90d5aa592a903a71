"""Benchmark buildpack builds: the Python installer (uv against venv + pip), and whole deploys per
language against the same build done by hand, in the same run.

    python bench/buildpacks.py [--rounds 3] [--requirements "flask gunicorn"]
    python bench/buildpack_apps.py

``buildpack_apps.py``: each test app of ``tests/buildpacks/apps.py`` is deployed through pydo on ``shoal serve
--runtime local`` (create → ACTIVE: fetch, build, start, health check, traffic switched) and, beside it,
built and started by hand from a fresh copy with the commands a developer would type, until it answers
on its port. Both start with warm package caches (a first deploy of each app is made and thrown away).
Each deploy is also made with a 1 s health-check period: with the default 10 s, a first readiness probe
that comes before the app listens costs the deploy 10 s more. Medians of 3 interleaved rounds.

Each round builds the same app twice, once with uv (``BuildContext.fast_installer``) and once with
``python -m venv`` + ``pip install``, in fresh directories, alternating which goes first. Both keep their
own download caches between rounds (uv's and pip's), so round 1 is the cold first build and later rounds
are what a redeploy with changed inputs costs. Prints a table; never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path, PurePosixPath

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shoal.runtime.buildpacks import BuildContext, HostExecutor, Provisioner, build, build_env  # noqa: E402


async def one_build(root: Path, requirements: str, fast: bool, caches: Path) -> float:
    app = root / "app"
    app.mkdir(parents=True)
    (app / "requirements.txt").write_text("\n".join(requirements.split()) + "\n")
    (app / "app.py").write_text("print('hello')\n")
    executor = HostExecutor()
    user_env = {"UV_CACHE_DIR": str(caches / "uv"), "PIP_CACHE_DIR": str(caches / "pip")}
    ctx = BuildContext(source=app, app=PurePosixPath(app), layers=PurePosixPath(root / "layers"),
                       cache=PurePosixPath(root / "cache"), kind="service", env=build_env(executor, user_env),
                       user_env=user_env, fast_installer=fast)
    start = time.perf_counter()
    await build(ctx, executor, Provisioner(caches / "toolchains"), lambda line: None)
    return time.perf_counter() - start


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requirements", default="flask gunicorn")
    args = parser.parse_args()
    samples: dict[str, list[float]] = {"uv": [], "venv + pip": []}
    with tempfile.TemporaryDirectory(prefix="shoal-bench-bp-") as scratch:
        caches = Path(scratch) / "caches"
        for round_ in range(args.rounds):
            order = [True, False] if round_ % 2 == 0 else [False, True]
            for fast in order:
                root = Path(scratch) / f"r{round_}-{'uv' if fast else 'pip'}"
                samples["uv" if fast else "venv + pip"].append(await one_build(root, args.requirements, fast, caches))
                shutil.rmtree(root)
    print(f"Python build of requirements: {args.requirements} ({args.rounds} rounds, fresh dirs, caches kept)")
    print(f"| {'installer':<12} | {'first (cold) s':>14} | {'median later s':>14} |")
    print(f"|{'-' * 14}|{'-' * 16}|{'-' * 16}|")
    for name, times in samples.items():
        later = statistics.median(times[1:]) if len(times) > 1 else float("nan")
        print(f"| {name:<12} | {times[0]:>14.2f} | {later:>14.2f} |")


if __name__ == "__main__":
    asyncio.run(main())
