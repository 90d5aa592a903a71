"""The container runtime through its port, on a real podman: image pruning keeps what rollbacks and
running instances need; removing an app leaves no container, network, image or firewall rule."""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import replace
from pathlib import Path

from shoal.core.secrets import SecretBox
from shoal.domain.plan import make_plan
from shoal.ingress.table import RouteTable
from shoal.runtime.container import containers, images
from shoal.runtime.container.access import EngineAccess
from shoal.runtime.container.builds import KEEP_IMAGES
from shoal.runtime.container.engine import Engine
from shoal.runtime.container.runtime import ContainerRuntime
from shoal.runtime.container.session import EngineSession
from shoal.runtime.container.stack import STACK_IMAGE
from shoal.runtime.local.databases import DevDatabases
from tests.e2e.apps import commit, make_repo

SERVER = "import os, http.server\nhttp.server.ThreadingHTTPServer(('0.0.0.0', int(os.environ['PORT'])), " \
         "http.server.SimpleHTTPRequestHandler).serve_forever()\n"


def _spec(repo: Path) -> dict[str, object]:
    return {"name": "prune", "services": [{"name": "web", "git": {"repo_clone_url": str(repo), "branch": "main"},
                                           "run_command": "python3 server.py",
                                           "health_check": {"http_path": "/", "period_seconds": 1},
                                           "termination": {"drain_seconds": 0, "grace_period_seconds": 1}}]}


def test_pruning_keeps_rollbacks_and_what_runs_and_removing_the_app_leaves_nothing(
        tmp_path: Path, engine: Engine, stack_image: str) -> None:
    repo = make_repo(tmp_path / "repo", {"server.py": SERVER})
    access = EngineAccess(lambda: EngineSession(engine), EngineSession(engine))
    runtime = ContainerRuntime(tmp_path / "data", RouteTable(), access, STACK_IMAGE, box=SecretBox(bytes(32)),
                               databases=DevDatabases(tmp_path / "data" / "postgres"))
    lines: list[str] = []

    def log(stage: str, component: str, line: str) -> None:
        lines.append(line)

    async def scenario() -> tuple[str, list[str]]:
        first = make_plan(_spec(repo), app_id="prune-app", deployment_id="d0000000-0", account_id="a")
        unit = first.unit("web")
        unit = replace(unit, commit=await runtime.fetch(first, unit, log))
        running = await runtime.build(first, unit, log)
        # The run command is the buildpack image's own CMD too: it runs as built where shoal's labels
        # are not read (a Kubernetes pod). Failed before: CMD was ["/bin/sh"].
        command = engine.client.images.get(running.location).attrs["Config"]["Cmd"]
        assert command[:2] == ["/bin/sh", "-c"] and command[-1].endswith("python3 server.py")
        first = first.with_progress({"web": unit.commit or ""}, {"web": running})
        await runtime.start(first, first.unit("web"), log)
        await runtime.wait_healthy(first, first.unit("web"), log)
        for i in range(1, KEEP_IMAGES + 3):  # later builds that never went live
            commit(repo, f"v{i}", {"version.txt": str(i)})
            plan = make_plan(_spec(repo), app_id="prune-app", deployment_id=f"d{i:07d}-0", account_id="a")
            later = replace(plan.unit("web"), commit=await runtime.fetch(plan, plan.unit("web"), log))
            await runtime.build(plan, later, log)
        kept = images.labelled(engine, tagged_only=True, app="prune-app", component="web")
        return running.digest or "", kept

    async def main() -> None:
        try:
            running, kept = await scenario()
            assert running in kept  # the image the live instance runs survives pruning
            assert len(kept) == KEEP_IMAGES + 1  # the newest builds (rollbacks), plus what runs
            await runtime.remove_app("prune-app")
            assert images.labelled(engine, app="prune-app") == []
            assert containers.listed(engine, app="prune-app") == []
            assert not [n for n in engine.client.networks.list() if "prune-app" in (n.name or "")]
            rules = subprocess.run(["iptables", "-S"], capture_output=True, text=True).stdout
            assert "prune-app" not in rules
        finally:
            await runtime.close()

    asyncio.run(main())
