"""The ingress's per-request modules are installed compiled (mypyc, see setup.py), and the same
sources pass the ingress tests interpreted too: both builds are the product."""

from __future__ import annotations

import ast
import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def compiled_modules() -> list[str]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    paths = next(ast.literal_eval(node.value) for node in tree.body
                 if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "COMPILED")
    return [p.removeprefix("src/").removesuffix(".py").replace("/", ".") for p in paths]


def installed_compiled() -> bool:
    return all(not str(importlib.import_module(m).__file__).endswith(".py") for m in compiled_modules())


@pytest.mark.skipif(shutil.which(os.environ.get("CC", "cc")) is None or bool(os.environ.get("SHOAL_PURE_PYTHON")),
                    reason="no C compiler here (or SHOAL_PURE_PYTHON is set): shoal installs as plain Python")
def test_the_ingress_hot_path_is_installed_compiled() -> None:
    interpreted = [m for m in compiled_modules() if str(importlib.import_module(m).__file__).endswith(".py")]
    assert not interpreted, f"installed as plain Python: {interpreted} (did the mypyc build fail? see setup.py)"


@pytest.mark.skipif(not installed_compiled(), reason="the installed ingress is the interpreted one already")
def test_the_ingress_tests_pass_on_the_interpreted_sources() -> None:
    tests = ["tests/ingress/test_ingress_server.py", "tests/domain/test_upstream_order.py", "tests/ingress/test_cors.py"]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout
