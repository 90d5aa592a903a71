"""Build hook: compile the ingress's per-request path with mypyc when a C compiler is at hand.

Every request to every app runs through these modules, and compiled they spend about a third
less CPU per request (``bench/ingress.py``). They stay plain, fully typed Python: without a
compiler, or with ``SHOAL_PURE_PYTHON=1`` (for editable installs, where a compiled module would
shadow edits to its source), shoal installs and runs the same code interpreted.
Everything else about the package is declared in ``pyproject.toml``.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

# The modules a proxied request passes through, and the pure ones they call per request.
COMPILED = [
    "src/shoal/ingress/client.py",
    "src/shoal/ingress/exchange.py",
    "src/shoal/ingress/upstream.py",
    "src/shoal/ingress/dispatch.py",
    "src/shoal/ingress/table.py",
    "src/shoal/ingress/cors.py",
    "src/shoal/domain/routing.py",
    "src/shoal/domain/traffic.py",
]


def _warn(why: str) -> None:
    print(f"shoal: installing the ingress as plain Python ({why}); it works the same, using more CPU "
          "per request", file=sys.stderr)


class OptionalBuildExt(build_ext):
    """A failed compile leaves the pure-Python modules in place instead of failing the install.

    All or nothing: the compiled modules share one runtime library, so a partial build is removed.
    """

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any compiler failure means: ship the .py files
            for output in self.get_outputs():
                if os.path.exists(output):
                    os.remove(output)
            _warn(f"the compiled build failed: {exc}")


def _extensions() -> list[object]:
    if os.environ.get("SHOAL_PURE_PYTHON"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _warn("mypyc is not installed")
        return []
    try:
        # The build environment holds only the build requirements, so third-party imports are
        # typed as Any here; the strict check of the same sources is tests/test_types.py's job.
        return list(mypycify(["--ignore-missing-imports", "--no-warn-unused-ignores", "--no-warn-return-any",
                              "--allow-subclassing-any", *COMPILED], opt_level="3"))
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - mypyc reports type errors by raising SystemExit
        _warn(f"mypyc could not compile it: {exc}")
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
