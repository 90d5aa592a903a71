"""The layer diagram of the architecture page, enforced (import-linter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_layers_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint) if lint.exists() else "lint-imports", "--config", str(ROOT / ".importlinter")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


# What runs an app reads the typed plan, never the spec dict (issue: one run plan for every runtime).
PLAN_READERS = ["runtime", "ingress", "engine/deployer.py", "engine/insights.py", "engine/schedules.py",
                "engine/forwarding.py", "engine/alerts.py", "observability"]


def _spec_reads(path: Path) -> list[str]:
    """``<...>spec.get(...)`` and ``<...>spec[...]`` in a module: reads of a raw spec mapping."""
    import ast

    def is_spec(node: ast.expr) -> bool:
        return (isinstance(node, ast.Name) and node.id.endswith("spec")) or \
            (isinstance(node, ast.Attribute) and node.attr.endswith("spec"))

    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Subscript) and is_spec(node.value):
            found.append(f"{path}:{node.lineno}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and is_spec(node.func.value):
            found.append(f"{path}:{node.lineno}")
    return found


def test_runtimes_and_the_deployer_read_only_the_plan() -> None:
    src = ROOT / "src" / "shoal"
    files = [p for entry in PLAN_READERS for p in ((src / entry).rglob("*.py") if (src / entry).is_dir()
                                                   else [src / entry])]
    assert len(files) > 20
    reads = [hit for path in files for hit in _spec_reads(path)]
    assert reads == [], "read the typed plan (shoal.domain.plan) instead of the spec dict:\n" + "\n".join(reads)
